// A forwarded request's body must keep coming: the whole request within the route's
// requestTimeout, and never a silence longer than its bodyIdleTimeout (a caller trickling a body
// would otherwise hold a connection, an upstream request and its memory for as long as it
// likes). Progress is read off the socket's byte count, so the body stream itself is not
// touched (a 'data' listener would start it flowing before the upstream reads it).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
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

/**
 * Watches an answer being streamed to the client: if the client stops reading (the socket's
 * buffer stays full and nothing more leaves it for bodyIdleTimeout), both sides are cut. A quiet
 * stream (server-sent events) with nothing waiting to be written is not a stall. Returns stop().
 */
export function watchResponse(res: ServerResponse, d: RequestDeadlines, clock: Clock, onTimeout: (why: 'response-stalled') => void): () => void {
  const socket = res.socket;
  if (socket === null || res.writableFinished) return () => undefined;
  let lastWritten = socket.bytesWritten;
  let lastProgress = clock.now();
  let timer: TimerHandle | undefined;
  let done = false;
  const stop = (): void => {
    done = true;
    timer?.cancel();
    timer = undefined;
  };
  const check = (): void => {
    timer = undefined;
    if (done || res.writableFinished || socket.destroyed) return stop();
    const now = clock.now();
    const written = socket.bytesWritten;
    if (written !== lastWritten || socket.writableLength === 0) {
      lastWritten = written;
      lastProgress = now;
    }
    if (now - lastProgress < d.bodyIdleTimeout) {
      timer = clock.setTimer(check, Math.max(1, lastProgress + d.bodyIdleTimeout - now));
      return;
    }
    stop();
    onTimeout('response-stalled');
    // a reset, not a FIN: a client that does not read would never see a FIN behind the unread
    // data (on TLS, the reset goes on the TCP socket the TLS one wraps)
    const tcp = (socket as { _parent?: Socket | null })._parent ?? (socket);
    try {
      tcp.resetAndDestroy();
    } catch {
      tcp.destroy();
    }
    socket.destroy();
  };
  res.once('finish', stop);
  res.once('close', stop);
  timer = clock.setTimer(check, d.bodyIdleTimeout);
  return stop;
}
