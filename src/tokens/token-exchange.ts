// POST /.gatehouse/token on the mTLS listener: a service trades its client certificate for a
// token to one audience (RFC 8693 shape), bound to that certificate (RFC 8705).
//
// Request (application/x-www-form-urlencoded):
//   grant_type=urn:ietf:params:oauth:grant-type:token-exchange
//   audience=spiffe://<td>/ns/<ns>/sa/<service>
//   [requested_token_type=urn:ietf:params:oauth:token-type:jwt | ...:access_token]
// The caller's identity is its certificate, so subject_token / actor_token (delegation) are
// refused rather than silently ignored. Errors are RFC 6749 §5.2 JSON with status 400;
// RFC 8693 §2.2.2: an audience the caller may not reach is invalid_target.
import { GatehouseError, isGatehouseError } from '../errors.js';
import { parseSpiffeId } from '../pki/spiffe.js';
import type { MintInput, MintedToken } from './types.js';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export interface TokenExchangeCaller {
  spiffeId: string;
  namespace: string;
  service: string;
  /** Thumbprint of the client certificate on this connection (certThumbprint()). */
  certThumbprint: string;
}

export interface TokenExchangeInput {
  /** The parsed form body (one value per name; a repeated name should be refused by the caller). */
  form: Readonly<Record<string, string | undefined>>;
  caller: TokenExchangeCaller;
  /** Whether policy would let the caller call this audience at all. */
  canReach: (audienceSpiffeId: string) => boolean | Promise<boolean>;
  /** The roles policy grants the caller on that audience (default none). */
  rolesFor?: (audienceSpiffeId: string) => readonly string[] | Promise<readonly string[]>;
  service: { mint(input: MintInput): Promise<MintedToken> };
  /** Only audiences in this trust domain (default: the caller's). */
  trustDomain?: string;
}

export type OAuthErrorCode = 'invalid_request' | 'invalid_target' | 'unsupported_grant_type' | 'invalid_scope' | 'temporarily_unavailable';

export interface TokenExchangeSuccess {
  access_token: string;
  issued_token_type: typeof JWT_TOKEN_TYPE;
  token_type: 'Bearer';
  expires_in: number;
}

export interface TokenExchangeResult {
  status: 200 | 400 | 503;
  body: TokenExchangeSuccess | { error: OAuthErrorCode; error_description: string };
  headers: Record<string, string>;
}

const HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', pragma: 'no-cache' } as const;

function fail(error: OAuthErrorCode, description: string, status: 400 | 503 = 400): TokenExchangeResult {
  return { status, body: { error, error_description: description }, headers: { ...HEADERS } };
}

export async function tokenExchange(input: TokenExchangeInput): Promise<TokenExchangeResult> {
  const { form, caller } = input;
  // grant_type is required and must be token exchange.
  const grant = form.grant_type;
  if (grant === undefined || grant === '') return fail('invalid_request', 'grant_type is required');
  if (grant !== TOKEN_EXCHANGE_GRANT) return fail('unsupported_grant_type', `only ${TOKEN_EXCHANGE_GRANT} is supported`);
  // The caller's certificate is the subject; delegation is not offered.
  if (form.subject_token !== undefined || form.actor_token !== undefined) {
    return fail('invalid_request', 'subject_token and actor_token are not supported: the client certificate is the subject');
  }
  const wanted = form.requested_token_type;
  if (wanted !== undefined && wanted !== JWT_TOKEN_TYPE && wanted !== ACCESS_TOKEN_TYPE) return fail('invalid_request', `requested_token_type must be ${JWT_TOKEN_TYPE}`);
  // Roles come from policy, not from the request.
  if (form.scope !== undefined) return fail('invalid_scope', 'scope is not supported: roles come from policy');
  if (form.resource !== undefined) return fail('invalid_target', 'resource is not supported: name the upstream by its SPIFFE ID in audience');

  // Exactly one audience, a SPIFFE ID in the trust domain.
  const audience = form.audience;
  if (audience === undefined || audience === '') return fail('invalid_request', 'audience is required');
  let target;
  try {
    target = parseSpiffeId(audience);
  } catch {
    return fail('invalid_target', 'audience must be one SPIFFE ID spiffe://<trust-domain>/ns/<namespace>/sa/<service>');
  }
  const trustDomain = input.trustDomain ?? parseSpiffeId(caller.spiffeId).trustDomain;
  if (target.trustDomain !== trustDomain) return fail('invalid_target', 'audience is in another trust domain');
  if (!(await input.canReach(audience))) return fail('invalid_target', 'policy does not allow this caller to reach the audience');

  try {
    const minted = await input.service.mint({
      subject: caller.spiffeId,
      audience,
      namespace: target.namespace,
      roles: input.rolesFor === undefined ? [] : await input.rolesFor(audience),
      certThumbprint: caller.certThumbprint,
    });
    const body: TokenExchangeSuccess = { access_token: minted.token, issued_token_type: JWT_TOKEN_TYPE, token_type: 'Bearer', expires_in: minted.expiresIn };
    return { status: 200, body, headers: { ...HEADERS } };
  } catch (err) {
    if (isGatehouseError(err, 'ERR_TOKEN_UNAVAILABLE')) return { ...fail('temporarily_unavailable', 'no signing key is available; retry shortly', 503), headers: { ...HEADERS, 'retry-after': '5' } };
    if (err instanceof GatehouseError && err.status === 400) return fail('invalid_request', err.message);
    throw err;
  }
}
