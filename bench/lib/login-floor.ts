// The floor under a login on this machine, measured in the same run: three HTTP requests in a
// row (fastify inject, like the login's), each committing one guarded transaction on the same
// store as the gateway, and nothing else. A login cannot be cheaper: each of its three steps
// must durably store something (the single-use challenge, the credential counter, the OTP
// time step and the session) before it answers.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Store } from '../../src/store/index.js';

export interface Floor {
  /** Three requests in a row; returns their summed server time in microseconds. */
  triple(): Promise<number>;
  close(): Promise<void>;
}

/** Three requests in a row to url; their summed time in microseconds. */
export async function timeThree(app: FastifyInstance, url: string, payload: object): Promise<number> {
  let us = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const res = await app.inject({ method: 'POST', url, payload });
    us += (performance.now() - t0) * 1000;
    if (res.statusCode !== 200) throw new Error(res.body);
  }
  return us;
}

export async function loginFloor(store: Store): Promise<Floor> {
  const app: FastifyInstance = Fastify();
  let n = 0;
  app.post('/floor', async (req) => {
    const key = `/bench/floor/${n++}`;
    // a create-only put, like a login step's guarded write, of a login-record-sized value
    const r = await store.txn([{ key, target: 'version', op: '==', value: 0 }], [{ op: 'put', key, value: JSON.stringify(req.body) }]);
    if (!r.succeeded) throw new Error('floor key existed');
    return { ok: true };
  });
  await app.ready();
  const payload = { username: 'user0', returnTo: 'login.example.org/', factors: ['webauthn-uv', 'totp'], pad: 'x'.repeat(200) };
  return {
    triple: () => timeThree(app, '/floor', payload),
    close: () => app.close(),
  };
}
