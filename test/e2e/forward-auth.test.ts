// Forward-auth behind Debian's nginx: nginx asks Gatehouse (`auth_request` to
// /.gatehouse/auth/verify over TLS, verifying Gatehouse's certificate against its CA) before it
// proxies to the app. A signed-in session passes and the app gets Gatehouse's identity
// headers and token; no session, a foreign cookie, or a session that has ended does not.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { makeEnv, startGateway, enroll, login, type Env, type Gateway, type Cookies } from '../authenticate/harness.js';
import { loadCa } from '../../src/pki/index.js';
import { freePort } from '../helpers/programs.js';
import { startNginx, type Nginx } from '../helpers/nginx.js';
import { requireProgram } from '../helpers/programs.js';

const nginxProgram = requireProgram('nginx', 'nginx-light');

function get(port: number, pathname: string, cookie?: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, path: pathname, headers: { host: 'app.example.org', ...(cookie !== undefined ? { cookie } : {}) } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    r.on('error', reject);
    r.end();
  });
}

describe('forward-auth: nginx auth_request in front of an app', { skip: nginxProgram.skip !== false ? nginxProgram.skip : false }, () => {
  let env: Env;
  let gw: Gateway;
  let nginx: Nginx;
  let cookies: Cookies;
  const cookieHeader = (): string => [...cookies.jar].map(([k, v]) => `${k}=${v}`).join('; ');

  before(async () => {
    env = await makeEnv();
    gw = await startGateway(env, { login: "login: { rateLimit: { max: 10000, window: 1m }, forwardAuth: { trustedProxies: ['127.0.0.1'] } }" });
    const at = await gw.app.listen();
    const humanPort = at.human!.port;
    const ca = await loadCa(path.join(env.dir, 'certs'));
    writeFileSync(path.join(env.dir, 'ca.pem'), ca.certPem);
    const port = await freePort();
    const started = await startNginx(
      port,
      `
  upstream app { server ${new URL(env.upstream.url).host}; }
  server {
    listen 127.0.0.1:${port};
    location = /_gatehouse {
      internal;
      proxy_pass https://127.0.0.1:${humanPort}/.gatehouse/auth/verify;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${env.dir}/ca.pem;
      proxy_ssl_name app.example.org;
      proxy_ssl_server_name on;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Uri $request_uri;
      proxy_set_header X-Forwarded-Method $request_method;
      proxy_set_header X-Forwarded-Proto https;
    }
    location / {
      auth_request /_gatehouse;
      auth_request_set $gh_user $upstream_http_x_gatehouse_user;
      auth_request_set $gh_roles $upstream_http_x_gatehouse_roles;
      auth_request_set $gh_token $upstream_http_authorization;
      proxy_set_header X-Gatehouse-User $gh_user;
      proxy_set_header X-Gatehouse-Roles $gh_roles;
      proxy_set_header Authorization $gh_token;
      proxy_pass http://app;
    }
  }`,
    );
    if ('skip' in started) throw new Error(started.skip);
    nginx = started;
    const alice = await enroll(env, gw, 'alice', ['payments:ops-admin']);
    ({ cookies } = await login(env, gw, alice, { host: 'app.example.org' }));
  });

  after(async () => {
    await nginx?.stop();
    await gw?.close();
    await env?.close();
  });

  it('a signed-in session passes, and the app receives the identity and a token', async () => {
    const res = await get(nginx.port, '/v1/charges/7', cookieHeader());
    assert.equal(res.status, 200, `${res.body}\n${nginx.errorLog().slice(-2000)}`);
    const echo = JSON.parse(res.body) as { headers: Record<string, string> };
    assert.equal(echo.headers['x-gatehouse-user'], 'alice');
    assert.match(echo.headers['x-gatehouse-roles'] ?? '', /ops-admin/);
    assert.match(echo.headers.authorization ?? '', /^Bearer eyJ/);
  });

  it('no session, or a cookie Gatehouse never issued, is refused by nginx', async () => {
    assert.equal((await get(nginx.port, '/v1/charges/7')).status, 401);
    assert.equal((await get(nginx.port, '/v1/charges/7', '__Host-gatehouse=' + 'A'.repeat(43))).status, 401);
  });

  it('a session whose roles policy does not admit is 403', async () => {
    const bob = await enroll(env, gw, 'bob', ['payments:viewer']);
    const { cookies: bobs } = await login(env, gw, bob, { host: 'app.example.org' });
    const res = await get(nginx.port, '/v1/charges/7', [...bobs.jar].map(([k, v]) => `${k}=${v}`).join('; '));
    assert.equal(res.status, 403);
  });

  it('once the session ends (logout), the same cookie is refused', async () => {
    const out = await gw.request({ method: 'POST', url: '/.gatehouse/logout', host: 'app.example.org', cookies, body: {} });
    assert.equal(out.status, 200, out.body);
    assert.equal((await get(nginx.port, '/v1/charges/7', cookieHeader())).status, 401);
  });
});
