// A forwarded request's body must keep coming: the whole request within the route's
// requestTimeout, and never a silence longer than its bodyIdleTimeout (a caller trickling a body
// would otherwise hold a connection, an upstream request and its memory for as long as it
// likes). Progress is read off the socket's byte count, so the body stream itself is not
// touched (a 'data' listener would start it flowing before the upstream reads it).
import type { IncomingMessage } from 'node:http';
import type { Clock, TimerHandle } from '../lib/clock.js';

export interface RequestDeadlines {
  requestTimeout: number;
  bodyIdleTimeout: number;
}

export type RequestTimeout = 'request-timeout' | 'body-idle-timeout';

function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/** Watches the request until its body has arrived; on a deadline calls onTimeout once and destroys the connection. Returns stop(). */
export function watchRequest(req: IncomingMessage, d: RequestDeadlines, clock: Clock, onTimeout: (why: RequestTimeout) => void): () => void {
  if (!hasBody(req) || req.complete) return () => undefined;
  const socket = req.socket;
  const started = clock.now();
  let lastBytes = socket.bytesRead;
  let lastProgress = started;
  let timer: TimerHandle | undefined;
  let done = false;
  const stop = (): void => {
    done = true;
    timer?.cancel();
    timer = undefined;
  };
  const arm = (): void => {
    const at = Math.min(started + d.requestTimeout, lastProgress + d.bodyIdleTimeout);
    timer = clock.setTimer(check, Math.max(1, at - clock.now()));
  };
  const check = (): void => {
    timer = undefined;
    if (done || req.complete) return stop();
    const now = clock.now();
    const bytes = socket.bytesRead;
    if (bytes !== lastBytes) {
      lastBytes = bytes;
      lastProgress = now;
    }
    const why: RequestTimeout | undefined = now >= started + d.requestTimeout ? 'request-timeout' : now >= lastProgress + d.bodyIdleTimeout ? 'body-idle-timeout' : undefined;
    if (why === undefined) return arm();
    stop();
    onTimeout(why);
    socket.destroy();
  };
  req.once('end', stop);
  req.once('close', stop);
  arm();
  return stop;
}
