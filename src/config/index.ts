// Typed, validated configuration: a YAML file plus GATEHOUSE_* environment overrides.
// Pure: the caller hands in the file text and the environment.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { GatehouseError } from '../errors.js';
import { Duration, Type, applyDefaults, dropNulls, formatPath, issuesOf, type Issue, type Path, type StaticDecode, type TSchema } from '../lib/schema.js';
import type { TLiteral, TUnion } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

// Shorthands that read like the config they describe; every problem is worded by lib/schema.ts.
/** A non-empty string, matching `pattern` when given; `hint` is what a refusal says it must be. */
const str = (o: { pattern?: RegExp; hint?: string } = {}) =>
  Type.String({ minLength: 1, ...(o.pattern !== undefined ? { pattern: o.pattern.source } : {}), ...(o.hint !== undefined ? { hint: o.hint } : {}) });
const int = (o: { min?: number; max?: number } = {}, fallback?: number) =>
  Type.Integer({ ...(o.min !== undefined ? { minimum: o.min } : {}), ...(o.max !== undefined ? { maximum: o.max } : {}), ...(fallback !== undefined ? { default: fallback } : {}) });
const oneOf = <const T extends string[]>(...values: T): TUnion<{ [K in keyof T]: TLiteral<T[K]> }> => Type.Union(values.map((v) => Type.Literal(v))) as TUnion<{ [K in keyof T]: TLiteral<T[K]> }>;
/** A map with exactly these keys: unknown keys are refused by name. */
const obj = <P extends Record<string, TSchema>>(props: P, fallback?: object) =>
  Type.Object(props, { additionalProperties: false, ...(fallback !== undefined ? { default: fallback } : {}) });
const list = <T extends TSchema>(item: T, o: { min?: number } = {}, fallback?: unknown[]) =>
  Type.Array(item, { ...(o.min !== undefined ? { minItems: o.min } : {}), ...(fallback !== undefined ? { default: fallback } : {}) });
const withDefault = <T extends TSchema>(schema: T, fallback: unknown): T => ({ ...schema, default: fallback });

const hostname = str({ pattern: /^[A-Za-z0-9.:[\]-]+$/, hint: 'a host name or IP address' });
const port = int({ min: 0, max: 65535 });
const endpoint = str({ pattern: /^https?:\/\/[^\s/]+$/, hint: 'an endpoint like http://127.0.0.1:2379' });
const dnsLabel = str({ pattern: /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, hint: 'a DNS label' });
const factor = oneOf('webauthn-uv', 'totp');

/** How long a route waits for a client to send its request (body included). */
export const ROUTE_TIMEOUT_DEFAULTS = { requestTimeout: 300_000, bodyIdleTimeout: 30_000 } as const;
/** Limits on a proxy listener's connections: an idle, half-open or slow client is dropped, never held. */
export const CONNECTION_DEFAULTS = { handshakeTimeout: 10_000, headersTimeout: 15_000, idleTimeout: 30_000, maxPerAddress: 256 } as const;
const connections = obj({
  /** A TCP connection must finish its TLS handshake within this. */
  handshakeTimeout: Duration({ minMs: 100, maxMs: 120_000 }, CONNECTION_DEFAULTS.handshakeTimeout),
  /** A request's headers must arrive within this (slowloris). */
  headersTimeout: Duration({ minMs: 100, maxMs: 300_000 }, CONNECTION_DEFAULTS.headersTimeout),
  /** A kept-alive connection with no request in flight is closed after this. */
  idleTimeout: Duration({ minMs: 100, maxMs: 3_600_000 }, CONNECTION_DEFAULTS.idleTimeout),
  /** Open connections one client address may hold (TLS handshakes in progress included). */
  maxPerAddress: int({ min: 1, max: 1_000_000 }, CONNECTION_DEFAULTS.maxPerAddress),
  /** Open connections the listener holds in all; default: from the process's descriptor limit (ulimit -n). */
  maxConnections: Type.Optional(int({ min: 1, max: 10_000_000 })),
}, {});

const listener = obj({
  address: withDefault(hostname, '127.0.0.1'),
  port,
  cert: Type.Optional(str()),
  key: Type.Optional(str()),
  connections,
});

const schema = obj({
  trustDomain: withDefault(str({ pattern: /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, hint: 'a lowercase DNS name like example.org' }), 'gatehouse.local'),
  /** This replica's name in audit chains; default: the host name. Unique per running process. */
  replicaId: Type.Optional(str({ pattern: /^[A-Za-z0-9._-]{1,128}$/, hint: 'letters, digits, ".", "_" or "-"' })),
  store: withDefault(
    Type.Union([
      obj({
        kind: Type.Literal('embedded'),
        path: str(),
        /** Bytes of address space to map for the data file (not memory); default: the store's DEFAULT_MAP_SIZE. */
        mapSize: Type.Optional(int({ min: 2 ** 20, max: 2 ** 40 })),
      }),
      obj({
        kind: Type.Literal('etcd'),
        endpoints: list(endpoint, { min: 1 }),
        timeoutMs: Type.Optional(int({ min: 50, max: 60_000 })),
        tls: Type.Optional(obj({ caFile: Type.Optional(str()), certFile: Type.Optional(str()), keyFile: Type.Optional(str()) })),
        auth: Type.Optional(obj({ username: str(), password: str() })),
      }),
    ]),
    { kind: 'embedded', path: './data' },
  ),
  bus: withDefault(
    Type.Union([
      obj({ kind: Type.Literal('memory'), retain: Type.Optional(int({ min: 1 })) }),
      obj({
        kind: Type.Literal('nats'),
        servers: list(str({ pattern: /^(nats|tls):\/\/[^\s/]+$|^[^\s:/]+:\d+$/, hint: 'a server like nats://127.0.0.1:4222' }), { min: 1 }),
        stream: Type.Optional(str({ pattern: /^[A-Za-z0-9_-]+$/, hint: 'a JetStream stream name (letters, digits, _ and -)' })),
        timeoutMs: Type.Optional(int({ min: 50, max: 60_000 })),
      }),
    ]),
    { kind: 'memory' },
  ),
  pki: obj({ dir: str() }, { dir: './certs' }),
  audit: obj({
    /** Sign a checkpoint of this replica's chain every N events... */
    checkpointEvery: int({ min: 1, max: 1_000_000 }, 1_000),
    /** ...or this often, whichever comes first. */
    checkpointInterval: Duration({ minMs: 1_000, maxMs: 3_600_000 }, 10_000),
    /** Where events wait on disk while the store is unreachable (relative to this file). */
    spoolDir: Type.Optional(str()),
  }, {}),
  tokens: obj({
    /** iss of every minted token; default https://gatehouse.<trustDomain>. */
    issuer: Type.Optional(str({ pattern: /^https?:\/\/[^\s?#]+$/, hint: 'an https:// URL without query or fragment' })),
    /** Key-encryption key file (base64 of 32 bytes); GATEHOUSE_KEK overrides; default <pki.dir>/kek. */
    kekFile: Type.Optional(str()),
    ttl: Duration({ minMs: 1_000, maxMs: 900_000 }, 300_000),
    rotateAfter: Duration({ minMs: 60_000 }, 86_400_000),
  }, {}),
  policies: obj({ dir: str() }, { dir: './policies' }),
  /** People's sessions (human listener). */
  sessions: obj({
    idleTimeout: Duration({ minMs: 60_000, maxMs: 86_400_000 }, 900_000),
    absoluteTimeout: Duration({ minMs: 300_000, maxMs: 30 * 86_400_000 }, 43_200_000),
  }, {}),
  /** The login flow (human listener). */
  login: obj({
    /** Where people sign in when routes use several hosts (one of webauthn.origins); default: on each host. */
    origin: Type.Optional(str({ pattern: /^https:\/\/[^\s/?#]+$/, hint: 'an origin like https://login.example.org' })),
    pendingTtl: Duration({ minMs: 30_000, maxMs: 3_600_000 }, 300_000),
    enrollmentTtl: Duration({ minMs: 60_000, maxMs: 30 * 86_400_000 }, 86_400_000),
    rateLimit: obj({ max: int({ min: 1 }, 30), window: Duration({ minMs: 1_000 }, 60_000) }, {}),
    lockout: obj({
      maxFailures: int({ min: 1, max: 1000 }, 5),
      window: Duration({ minMs: 1_000 }, 600_000),
      duration: Duration({ minMs: 1_000 }, 900_000),
    }, {}),
    /** /.gatehouse/auth/verify answers only these addresses when set (the front proxies). */
    forwardAuth: Type.Optional(obj({ trustedProxies: list(str({ pattern: /^[0-9A-Fa-f.:]+$/, hint: 'an IP address' })) })),
  }, {}),
  /** WebAuthn relying party (required with listeners.human). */
  webauthn: Type.Optional(obj({
    rpId: str({ pattern: /^[a-z0-9.-]+$/, hint: 'a lowercase host name like example.org' }),
    rpName: withDefault(str(), 'Gatehouse'),
    origins: list(str({ pattern: /^https:\/\/[^\s/?#]+$/, hint: 'an origin like https://login.example.org:8443' }), { min: 1 }),
    /** Authenticator models that may enroll (AAGUIDs, lowercase with dashes); absent: any. */
    allowedAAGUIDs: Type.Optional(list(str({ pattern: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, hint: 'an AAGUID like cb69481e-8ff7-4039-93ec-0a2729a154a8' }))),
    requireAttestation: withDefault(Type.Boolean(), false),
    /** PEM files of trusted attestation roots (relative to the config file). */
    attestationRoots: list(str(), {}, []),
    challengeTtl: Duration({ minMs: 10_000, maxMs: 600_000 }, 120_000),
  })),
  /** OTP tokens (human listener). */
  totp: obj({
    /** Enrollment may generate a seed for a phone app when no hardware token is assigned (sessions then reach aal2 at most). */
    allowSoftware: withDefault(Type.Boolean(), false),
  }, {}),
  /** Factors people must present, in order; per-role lists may only add factors. */
  mfa: obj({
    require: list(factor, { min: 1 }, ['webauthn-uv', 'totp']),
    /** Keys: "role" (in any namespace) or "namespace:role". */
    roles: Type.Optional(Type.Record(Type.String(), list(factor, { min: 1 }))),
  }, {}),
  listeners: obj({
    service: Type.Optional(listener),
    human: Type.Optional(listener),
    admin: withDefault(listener, { port: 9090 }),
  }, {}),
  routes: list(
    obj({
      host: hostname,
      namespace: dnsLabel,
      service: dnsLabel,
      upstream: str({ pattern: /^https?:\/\/[^\s]+$/, hint: 'an http:// or https:// URL' }),
      /** Keep the client's own Authorization header (default: dropped). */
      passAuthorization: Type.Optional(Type.Boolean()),
      /** Header that carries the minted token to the upstream (default authorization, as Bearer). */
      tokenHeader: Type.Optional(str({ pattern: /^[a-z0-9-]{1,64}$/, hint: 'a lowercase header name' })),
      /** Human listener: demand a WebAuthn assertion at most this old (e.g. 5m) on this route. */
      stepUp: Type.Optional(Duration({ minMs: 10_000, maxMs: 86_400_000 })),
      /** Human listener: the assurance level a session must have proven (docs/threat-model.md, "acr and amr"). */
      acr: Type.Optional(oneOf('aal1', 'aal2', 'aal3')),
      /**
       * A request header whose name has an underscore: refused with 400 (default, as nginx and
       * Envoy do: CGI-style servers read X_Foo and X-Foo as one variable), or dropped.
       */
      headersWithUnderscores: withDefault(oneOf('reject', 'drop'), 'reject'),
      /** The whole request (headers and body) must have arrived within this; raise it for long uploads. */
      requestTimeout: Duration({ minMs: 1_000, maxMs: 86_400_000 }, ROUTE_TIMEOUT_DEFAULTS.requestTimeout),
      /** The longest silence between two pieces of a request body (a trickled body is cut). */
      bodyIdleTimeout: Duration({ minMs: 1_000, maxMs: 3_600_000 }, ROUTE_TIMEOUT_DEFAULTS.bodyIdleTimeout),
      /**
       * How the upstream compares paths: exact (allow rules match byte for byte) or
       * case-insensitive (allow rules also match the case-folded path). Deny rules always do both.
       */
      paths: withDefault(oneOf('exact', 'case-insensitive'), 'exact'),
      /** Path spellings refused by default (400) that this upstream is known to read literally (src/gateway/path.ts PATH_FORMS). */
      allowPathForms: list(oneOf('double-encoding', 'overlong-utf8', 'trailing-dot', 'encoded-space', 'encoded-semicolon'), {}, []),
    }),
    {},
    [],
  ),
});

type Parsed = StaticDecode<typeof schema>;
export type GatehouseConfig = Parsed & {
  /** Where the config came from; relative paths in it were resolved against its folder. */
  source: string;
};
export type ListenerConfig = NonNullable<Parsed['listeners']['admin']>;
export type RouteConfig = Parsed['routes'][number];

function sameKind(section: unknown, kind: string): boolean {
  return section !== null && typeof section === 'object' && (section as Record<string, unknown>).kind === kind;
}

/** GATEHOUSE_* variables that override the file (12-factor style, for containers). */
const ENV_OVERRIDES: Record<string, (cfg: Record<string, unknown>, v: string) => void> = {
  GATEHOUSE_TRUST_DOMAIN: (c, v) => { c.trustDomain = v; },
  // A different kind replaces the whole section: the file's keys for the old kind do not apply.
  GATEHOUSE_STORE_KIND: (c, v) => { c.store = sameKind(c.store, v) ? c.store : { kind: v }; },
  GATEHOUSE_STORE_PATH: (c, v) => { c.store = { ...(c.store as object), path: v }; },
  GATEHOUSE_STORE_ENDPOINTS: (c, v) => { c.store = { ...(c.store as object), endpoints: v.split(',').map((s) => s.trim()) }; },
  GATEHOUSE_BUS_KIND: (c, v) => { c.bus = sameKind(c.bus, v) ? c.bus : { kind: v }; },
  GATEHOUSE_BUS_SERVERS: (c, v) => { c.bus = { ...(c.bus as object), servers: v.split(',').map((s) => s.trim()) }; },
  GATEHOUSE_ADMIN_PORT: (c, v) => {
    const l = (c.listeners ?? {}) as Record<string, unknown>;
    c.listeners = { ...l, admin: { ...(l.admin as object), port: Number(v) } };
  },
};
export const ENV_OVERRIDE_NAMES = Object.keys(ENV_OVERRIDES);

/** Problems found so far, with their key paths. */
class Issues {
  readonly list: Issue[] = [];
  add(path: Path, message: string): void {
    this.list.push({ path, message });
  }
}

/** Cross-key rules of the human listener: a relying party, origins it can serve, per-role factors that only add. */
function checkHuman(c: Parsed, issues: Issues): void {
  const w = c.webauthn;
  if (w !== undefined) {
    w.origins.forEach((o, i) => {
      const host = new URL(o).hostname;
      if (host !== w.rpId && !host.endsWith(`.${w.rpId}`)) issues.add(['webauthn', 'origins', i], `host ${host} is not webauthn.rpId (${w.rpId}) or below it`);
    });
    if (w.requireAttestation && w.attestationRoots.length === 0) issues.add(['webauthn', 'attestationRoots'], 'must name at least one PEM file when requireAttestation is true');
    if (c.login.origin !== undefined && !w.origins.includes(c.login.origin)) issues.add(['login', 'origin'], 'must be one of webauthn.origins');
  }
  if (new Set(c.mfa.require).size !== c.mfa.require.length) issues.add(['mfa', 'require'], 'must not repeat a factor');
  for (const [role, factors] of Object.entries(c.mfa.roles ?? {})) {
    if (!/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?:)?[A-Za-z0-9._-]{1,64}$/.test(role)) issues.add(['mfa', 'roles', role], 'must be a role or namespace:role');
    const missing = c.mfa.require.filter((f) => !factors.includes(f));
    if (missing.length > 0) issues.add(['mfa', 'roles', role], `may only add factors to mfa.require; it lacks ${missing.join(', ')}`);
  }
}

/** Parses and validates config text; `source` names the file in messages and anchors relative paths. */
export function parseConfig(text: string, source: string, env: Readonly<Record<string, string | undefined>> = {}): GatehouseConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new GatehouseError('ERR_CONFIG_INVALID', `${source}: ${doc.errors.map((e) => e.message).join('; ')}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new GatehouseError('ERR_CONFIG_INVALID', `${source}: the top level must be a map`);
  }
  const input = raw as Record<string, unknown>;
  for (const [name, apply] of Object.entries(ENV_OVERRIDES)) {
    const v = env[name];
    if (v !== undefined && v !== '') apply(input, v);
  }
  const issues = new Issues();
  // `key:` with nothing after it is absent: its default applies
  const value = applyDefaults(schema, dropNulls(input));
  issues.list.push(...issuesOf(schema, value));
  const parsed = issues.list.length === 0 ? Value.Decode(schema, value) : undefined;
  parsed?.routes.forEach((r, i) => {
    if (r.passAuthorization === true && (r.tokenHeader ?? 'authorization') === 'authorization') {
      issues.add(['routes', i, 'tokenHeader'], 'must name another header when passAuthorization is true (the client keeps Authorization)');
    }
  });
  if (parsed !== undefined) checkHuman(parsed, issues);
  if (parsed === undefined || issues.list.length > 0) {
    const lines = issues.list.map((i) => {
      const node = doc.getIn(i.path, true);
      const at = isNode(node) && node.range ? lineCounter.linePos(node.range[0]) : undefined;
      return `${source}${at ? `:${at.line}` : ''}: ${formatPath(i.path)} ${i.message}`;
    });
    throw new GatehouseError('ERR_CONFIG_INVALID', lines.join('\n'), { details: { issues: lines } });
  }
  const base = path.dirname(path.resolve(source));
  const abs = (p: string): string => path.resolve(base, p);
  return {
    ...parsed,
    store: parsed.store.kind === 'embedded' ? { ...parsed.store, path: abs(parsed.store.path) } : parsed.store,
    pki: { dir: abs(parsed.pki.dir) },
    audit: { ...parsed.audit, ...(parsed.audit.spoolDir !== undefined ? { spoolDir: abs(parsed.audit.spoolDir) } : {}) },
    tokens: { ...parsed.tokens, ...(parsed.tokens.kekFile !== undefined ? { kekFile: abs(parsed.tokens.kekFile) } : {}) },
    policies: { dir: abs(parsed.policies.dir) },
    ...(parsed.webauthn !== undefined
      ? { webauthn: { ...parsed.webauthn, attestationRoots: parsed.webauthn.attestationRoots.map(abs) } }
      : parsed.listeners.human !== undefined
        ? // a development default: the relying party is localhost on the human listener's port
          { webauthn: { rpId: 'localhost', rpName: 'Gatehouse', origins: [`https://localhost${parsed.listeners.human.port === 443 ? '' : `:${parsed.listeners.human.port}`}`], requireAttestation: false, attestationRoots: [], challengeTtl: 120_000 } }
        : {}),
    source: path.resolve(source),
  };
}

/**
 * What a valid config may still get wrong, worded for the start-up log: settings that promise
 * more than anything verifies. The caller prints them (config stays pure).
 */
export function configWarnings(c: GatehouseConfig): string[] {
  const out: string[] = [];
  const w = c.webauthn;
  if (w?.allowedAAGUIDs !== undefined && !w.requireAttestation) {
    out.push(`${c.source}: webauthn.allowedAAGUIDs is checked against the AAGUID the authenticator claims, and nothing verifies it without webauthn.requireAttestation: true (a software key can claim any model). Keys whose attestation did not verify are never hwk, and their sessions never aal3`);
  }
  const aal3 = c.routes.filter((r) => r.acr === 'aal3').map((r) => r.host);
  if (aal3.length > 0 && c.listeners.human !== undefined) {
    const why: string[] = [];
    if ((w?.attestationRoots.length ?? 0) === 0) why.push('webauthn.attestationRoots is empty (no key can prove its make)');
    const otp = c.mfa.require.includes('totp') || Object.values(c.mfa.roles ?? {}).some((fs) => fs.includes('totp'));
    if (!otp) why.push('no mfa list requires totp');
    if (why.length > 0) out.push(`${c.source}: routes ${aal3.join(', ')} demand acr aal3, which no session can reach: ${why.join('; ')}`);
  }
  return out;
}

export async function loadConfig(file: string, env: Readonly<Record<string, string | undefined>> = {}): Promise<GatehouseConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new GatehouseError('ERR_CONFIG_NOT_FOUND', `cannot read config ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
  }
  return parseConfig(text, file, env);
}
