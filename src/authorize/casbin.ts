// casbin over the compiled lines: the reference the fast path is proven against, and a
// second opinion for `gatehouse policy explain`. Never on the request path (it scans every line).
import { newEnforcer, newModelFromString, type Enforcer } from 'casbin';
import type { AccessRequest } from '../contracts/authz.js';
import { MODEL_CONF } from './model.js';
import { methodMatch, pathMatch, pathMatchFolded, roleMatch } from './path.js';
import type { PolicyLine } from './types.js';

export type CasbinRequest = [sns: string, ssvc: string, sroles: readonly string[], tns: string, tsvc: string, method: string, path: string, pathcase: string];

/** The request tokens of model.conf: a person's roles count only for the target namespace. */
export function casbinRequest(req: AccessRequest): CasbinRequest {
  const p = req.principal;
  const pathcase = req.pathCase ?? 'exact';
  if (p.kind === 'service') return [p.namespace, p.service, [], req.namespace, req.service, req.method, req.path, pathcase];
  const roles = Object.hasOwn(p.roles, req.namespace) ? (p.roles[req.namespace] ?? []) : [];
  return ['', '', roles, req.namespace, req.service, req.method, req.path, pathcase];
}

/** A casbin enforcer over the model (model.conf text) with the custom functions and the lines loaded. */
export async function casbinEnforcer(lines: readonly PolicyLine[], modelText: string = MODEL_CONF): Promise<Enforcer> {
  const e = await newEnforcer(newModelFromString(modelText));
  await e.addFunction('pathMatch', (path: unknown, pattern: unknown) => pathMatch(String(path), String(pattern)));
  await e.addFunction('pathMatchFolded', (path: unknown, pattern: unknown) => pathMatchFolded(String(path), String(pattern)));
  await e.addFunction('methodMatch', (method: unknown, methods: unknown) => methodMatch(String(method), String(methods)));
  await e.addFunction('roleMatch', (roles: unknown, role: unknown) => roleMatch(roles, String(role)));
  // Straight into the model: addPolicies checks each line against all others (quadratic).
  e.getModel().addPolicies('p', 'p', lines.map((l) => [...l]));
  return e;
}

/** casbin's verdict (synchronous enforce) for a request. */
export function casbinAllows(e: Enforcer, req: AccessRequest): boolean {
  return e.enforceSync(...casbinRequest(req));
}
