// `gatehouse revoke` against a gateway that holds the embedded store: the CLI goes through the
// gateway's local operator API (op `revoke`), which writes the record and publishes on the
// gateway's own bus; the service is refused at once.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { makeFixture, disposeFixture, startGateway, call, type Fixture, type RunningGateway } from '../proxy/fixture.js';
import { runCli } from '../../src/cli/index.js';

describe('gatehouse revoke through a running gateway (embedded store)', () => {
  let f: Fixture;
  let gw: RunningGateway;
  before(async () => {
    f = await makeFixture();
    gw = await startGateway(f);
    await import('node:fs/promises').then((fs) => fs.writeFile(f.configFile, f.configText.replace('admin: { address: 127.0.0.1, port: 0 }', `admin: { address: 127.0.0.1, port: ${gw.adminPort} }`)));
  });
  after(async () => {
    await gw?.close();
    if (f) await disposeFixture(f);
  });

  it('revokes a service via the local operator API and the gateway refuses it', async () => {
    assert.equal((await call(gw.port, f.ca, { cert: f.certs.cms, path: '/v1/charges/1' })).status, 200);
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(['revoke', 'service', f.certs.cms.spiffeId, '--reason', 'test', '--config', f.configFile], { out: (l) => out.push(l), err: (l) => err.push(l), env: {}, stopSignal: new Promise(() => undefined) });
    assert.equal(code, 0, err.join('\n'));
    const r = JSON.parse(out[0]!) as { via: string; kind: string; by: string; published: number | null };
    assert.deepEqual([r.via, r.kind, r.by], ['gateway', 'service', 'local-operator']);
    assert.ok(r.published !== null, "published on the gateway's bus");
    await assert.rejects(call(gw.port, f.ca, { cert: f.certs.cms, path: '/v1/charges/1' }));
    assert.ok(gw.app.revocationSet!.has('service', f.certs.cms.spiffeId));
  });
});
