// Issue 11 §7 (last bullet): audit event.action values come from one closed list
// (src/contracts/audit.ts). Before, the local operator API built its event's action from the
// URL — `admin.<name>` for POST /admin/v1/ops/<name> — before checking the token, so an
// unauthenticated caller chose part of an action (and could mint `admin.user.add.` lookalikes
// for an alert or a query to trip over). Now a refused call is audited under one fixed action,
// and the sources build no action from text.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ACTOR_HEADER, OPS_PATH, readAdminToken } from '../../src/admin/local-api.js';
import { AUDIT_ACTIONS, OPERATOR_ACTIONS, isAuditAction, type AuditEvent } from '../../src/contracts/audit.js';
import { auditEvents, makeEnv, startGateway, type Env, type Gateway } from '../authenticate/harness.js';

describe('event.action comes from a closed list', () => {
  let env: Env;
  let gw: Gateway;
  before(async () => {
    env = await makeEnv();
    gw = await startGateway(env);
  });
  after(async () => {
    await gw?.close();
    await env?.close();
  });

  const post = (name: string, headers: Record<string, string>) =>
    gw.app.admin.inject({ method: 'POST', url: `${OPS_PATH}${encodeURIComponent(name)}`, headers: { 'content-type': 'application/json', ...headers }, payload: '{}' });
  const refusals = async (): Promise<AuditEvent[]> => (await auditEvents(env, gw)).filter((e) => e['event.action'] === 'admin.op.refused');

  it('an unauthenticated call to the local API no longer chooses part of an action: it is audited as admin.op.refused', async () => {
    const evil = 'user.add.EVIL-chosen_by-caller';
    const res = await post(evil, { [ACTOR_HEADER]: 'mallory@nowhere' });
    assert.equal(res.statusCode, 401);
    await post('user.add', { authorization: 'Bearer wrong' });
    const events = await auditEvents(env, gw);
    assert.equal(events.some((e) => String(e['event.action']).includes('EVIL')), false, 'no action holds the caller\'s text');
    assert.equal(JSON.stringify(events).includes('EVIL'), false, 'nor any field');
    const [first, second] = await refusals();
    assert.deepEqual([first?.['event.outcome'], first?.['gatehouse.error_code'], first?.['gatehouse.op'], first?.['gatehouse.actor'], first?.['gatehouse.claimed_actor']], ['failure', 'ERR_ADMIN_UNAUTHORIZED', 'unknown', undefined, 'mallory@nowhere']);
    assert.deepEqual([second?.['gatehouse.op'], second?.['gatehouse.error_code']], ['user.add', 'ERR_ADMIN_UNAUTHORIZED'], 'a known operation is named from the table');
  });

  it('a token holder naming no operation is refused (404) and audited under the same fixed action', async () => {
    const token = await readAdminToken(path.join(env.dir, 'data'));
    const res = await post('no.such.op', { authorization: `Bearer ${token}`, [ACTOR_HEADER]: 'ops@bastion-1' });
    assert.equal(res.statusCode, 404);
    const e = (await refusals()).at(-1);
    assert.deepEqual([e?.['gatehouse.error_code'], e?.['gatehouse.op'], e?.['gatehouse.actor']], ['ERR_NOT_FOUND', 'unknown', 'ops@bastion-1']);
    for (const ev of await auditEvents(env, gw)) assert.ok(isAuditAction(ev['event.action']), String(ev['event.action']));
  });

  it('the list is closed: no duplicates, operator actions are admin.*, and the sources build no action from text', () => {
    assert.equal(new Set(AUDIT_ACTIONS).size, AUDIT_ACTIONS.length);
    for (const a of OPERATOR_ACTIONS) assert.match(a, /^admin\.[a-z_.]+$/);
    const root = path.resolve(import.meta.dirname, '..', '..', 'src');
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const n of readdirSync(d)) {
        const p = path.join(d, n);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts') && !p.endsWith(path.join('contracts', 'audit.ts'))) files.push(p);
      }
    };
    walk(root);
    const problems: string[] = [];
    for (const file of files) {
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        const where = `${path.relative(root, file)}:${i + 1}`;
        // an event's action, or a helper's action argument (authenticate's event(req, action, ...))
        const m = /'event\.action':\s*(.*)$/.exec(line) ?? /\bevent\(req, (.*)$/.exec(line);
        if (m === null) return;
        const value = m[1]!;
        // audit.chain.${kind}: kind is the writer's 'forked' | 'restarted', both listed
        if (/`/.test(value) && !/`audit\.chain\.\$\{kind\}`/.test(value)) problems.push(`${where}: an action built from a template`);
        // dotted literals that are values, not field names ('user.id': ..., e['event.action'])
        for (const [, lit] of value.matchAll(/(?<!\[)'([a-z_]+(?:\.[a-z_]+)+)'(?!\s*:)/g)) if (!isAuditAction(lit)) problems.push(`${where}: ${lit} is not on the list`);
      });
    }
    assert.deepEqual(problems, []);
  });
});
