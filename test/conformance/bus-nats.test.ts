// The bus conformance suite on NATS JetStream, against a nats-server started for this file.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { openNatsBus } from '../../src/bus/nats.js';
import type { Bus } from '../../src/bus/types.js';
import { startNats } from '../helpers/nats.js';
import type { NatsServer } from '../helpers/nats.js';
import { startTcpProxy } from '../revocation/tcp-proxy.js';
import { runBusConformance } from './bus.js';

let server: Promise<NatsServer | { skip: string }> | undefined;
const getServer = (): Promise<NatsServer | { skip: string }> => (server ??= startNats());

async function purge(url: string, stream: string): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    await (await jetstreamManager(nc)).streams.purge(stream);
  } finally {
    await nc.close();
  }
}
after(async () => {
  const s = await server;
  if (s !== undefined && !('skip' in s)) await s.stop();
});

runBusConformance('nats', async () => {
  const s = await getServer();
  if ('skip' in s) return s;
  // A stream per case, so cases share the server but not messages.
  const stream = `T_${randomBytes(6).toString('hex')}`;
  const opened: Bus[] = [];
  return {
    open: async () => {
      const bus = await openNatsBus({ kind: 'nats', servers: [s.url], stream, timeoutMs: 2_000 });
      opened.push(bus);
      return bus;
    },
    restartServer: () => s.restart(),
    dropRetained: () => purge(s.url, stream),
    close: async () => {
      await Promise.all(opened.map((b) => b.close()));
      const nc = await connect({ servers: s.url });
      try {
        await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
      } finally {
        await nc.close();
      }
    },
  };
});

describe('nats bus', () => {
  // Cut off without a FIN, the subscriber's connection still looks alive to the server, which
  // delivers the next message into it: the consumer counts it delivered, the subscriber never
  // sees it. The client's ordered consumer notices a loss only by the next message's delivery
  // sequence, so with nothing published after it the message waited for the next publication.
  it('a subscriber cut off silently gets the last message published meanwhile when it returns (nothing published after it)', { timeout: 60_000 }, async (t) => {
    const s = await getServer();
    if ('skip' in s) return t.skip(s.skip);
    const stream = `T_${randomBytes(6).toString('hex')}`;
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(s.url).port) });
    const publisher = await openNatsBus({ kind: 'nats', servers: [s.url], stream });
    const away = await openNatsBus({ kind: 'nats', servers: [proxy.url], stream });
    try {
      const got: string[] = [];
      const errors: Error[] = [];
      await away.subscribe('cut.*', (m) => void got.push(new TextDecoder().decode(m.data)), { onError: (e) => errors.push(e) });
      const until = async (n: number, ms: number): Promise<void> => {
        const deadline = Date.now() + ms;
        while (got.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      };
      await publisher.publish('cut.x', 'before');
      await until(1, 10_000);
      assert.deepEqual(got, ['before']);
      await proxy.cut({ silent: true });
      await publisher.publish('cut.x', 'while away');
      await new Promise((r) => setTimeout(r, 300));
      await proxy.restore();
      // pings every 2 s, 2 missed: the subscriber reconnects within ~6 s
      await until(2, 20_000);
      assert.deepEqual(got, ['before', 'while away']);
      assert.deepEqual(errors.map((e) => e.message), []);
    } finally {
      await away.close();
      await publisher.close();
      await proxy.close();
    }
  });

  // The client's ordered consumer recreates itself from the last sequence it saw; if the stream
  // dropped messages meanwhile it would just go on. The bus must end such a subscription with
  // ERR_BUS_SEQUENCE_GONE (the caller then catches up from the store), never skip silently.
  it('a subscription whose consumer is recreated after messages it never got aged out ends with ERR_BUS_SEQUENCE_GONE', { timeout: 60_000 }, async (t) => {
    const s = await getServer();
    if ('skip' in s) return t.skip(s.skip);
    const stream = `T_${randomBytes(6).toString('hex')}`;
    const bus = await openNatsBus({ kind: 'nats', servers: [s.url], stream });
    const nc = await connect({ servers: s.url });
    try {
      const jsm = await jetstreamManager(nc);
      const got: string[] = [];
      const errors: Error[] = [];
      await bus.subscribe('gone.*', (m) => void got.push(new TextDecoder().decode(m.data)), { onError: (e) => errors.push(e) });
      await bus.publish('gone.x', 'one');
      const deadline = Date.now() + 10_000;
      while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(got, ['one']);
      // Take the subscriber's consumer away, publish what it should get, and let it age out.
      for await (const c of jsm.consumers.list(stream)) await jsm.consumers.delete(stream, c.name);
      await bus.publish('gone.x', 'two');
      await bus.publish('gone.x', 'three');
      await jsm.streams.purge(stream);
      // The consumer is recreated (missed heartbeats: ~5 s); later messages must not arrive as if nothing was lost.
      const until = Date.now() + 30_000;
      while (errors.length === 0 && Date.now() < until) {
        await bus.publish('gone.x', 'later');
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.deepEqual(errors.map((e) => (e as { code?: string }).code), ['ERR_BUS_SEQUENCE_GONE']);
      assert.deepEqual(got, ['one'], 'nothing after the gap was handed over');
    } finally {
      await nc.close();
      await bus.close();
    }
  });

  // The consumer is recreated after a restart from the subscription's resume point; an idle
  // subscription must have moved that point past other subjects' messages, or their aging out
  // would look like a gap (ERR_BUS_SEQUENCE_GONE). Needs one empty pull (10 s) to pass.
  it('an idle subscription survives other subjects aging out and a server restart', { timeout: 60_000 }, async (t) => {
    const s = await getServer();
    if ('skip' in s) return t.skip(s.skip);
    const stream = `T_${randomBytes(6).toString('hex')}`;
    const bus = await openNatsBus({ kind: 'nats', servers: [s.url], stream });
    try {
      const got: string[] = [];
      const errors: Error[] = [];
      await bus.subscribe('quiet.*', (m) => void got.push(m.subject), { onError: (e) => errors.push(e) });
      for (let i = 0; i < 5; i++) await bus.publish('busy.x', String(i));
      await new Promise((r) => setTimeout(r, 11_500));
      await purge(s.url, stream);
      await s.restart();
      await bus.publish('quiet.y', 'hello');
      const deadline = Date.now() + 15_000;
      while (got.length === 0 && errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(errors.map((e) => e.message), []);
      assert.deepEqual(got, ['quiet.y']);
    } finally {
      await bus.close();
    }
  });
});
