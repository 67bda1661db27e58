// A TCP relay the test can cut and restore: one replica reaches nats-server through it, so that
// replica alone can be cut off from the bus while the others keep publishing.
import net from 'node:net';

export interface TcpProxy {
  readonly url: string;
  /**
   * Refuses new connections and ends the live ones: closed on both sides (each end sees it at
   * once), or with `silent` left open but carrying nothing, like a pulled cable (each end
   * notices only by its own pings; the server goes on writing into its end).
   */
  cut(options?: { silent?: boolean }): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<readonly [net.Socket, net.Socket]>();
  // silently cut connections, kept open until close()
  const dead = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  const listen = async (): Promise<void> => {
    const s = net.createServer((client) => {
      const upstream = net.connect(target.port, target.host);
      const pair = [client, upstream] as const;
      pairs.add(pair);
      const done = (): void => {
        client.destroy();
        upstream.destroy();
        pairs.delete(pair);
      };
      client.on('error', done).on('close', done);
      upstream.on('error', done).on('close', done);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', resolve));
    port = (s.address() as net.AddressInfo).port;
    server = s;
  };
  const stopListening = async (wait: boolean): Promise<void> => {
    const s = server;
    server = undefined;
    if (s === undefined) return;
    // close()'s callback waits for every connection to end, which a silently cut one never does
    if (wait) await new Promise<void>((resolve) => s.close(() => resolve()));
    else s.close();
  };
  const cut = async (options: { silent?: boolean } = {}): Promise<void> => {
    for (const [client, upstream] of pairs) {
      if (options.silent === true) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        for (const sock of [client, upstream]) {
          sock.removeAllListeners('close');
          sock.removeAllListeners('error');
          sock.on('error', () => undefined);
          // unread bytes stay in the kernel: no FIN, no RST, nothing forwarded
          sock.pause();
          dead.add(sock);
        }
      } else {
        client.destroy();
        upstream.destroy();
      }
    }
    pairs.clear();
    await stopListening(options.silent !== true);
  };
  await listen();
  return {
    url: `nats://127.0.0.1:${port}`,
    cut,
    restore: listen,
    close: async () => {
      await cut();
      for (const sock of dead) sock.destroy();
      dead.clear();
    },
  };
}
