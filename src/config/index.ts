// Typed, validated configuration: a YAML file plus GATEHOUSE_* environment overrides.
// Pure: the caller hands in the file text and the environment.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { GatehouseError } from '../errors.js';
import { bool, byKind, duration, int, list, mapOf, obj, oneOf, optional, required, str, withDefault, Issues, type Path } from './schema.js';

const hostname = str({ pattern: /^[A-Za-z0-9.:[\]-]+$/, hint: 'a host name or IP address' });
const port = int({ min: 0, max: 65535 });
const endpoint = str({ pattern: /^https?:\/\/[^\s/]+$/, hint: 'an endpoint like http://127.0.0.1:2379' });

/** Limits on a proxy listener's connections: an idle, half-open or slow client is dropped, never held. */
export const CONNECTION_DEFAULTS = { handshakeTimeout: 10_000, headersTimeout: 15_000, idleTimeout: 30_000, maxPerAddress: 256 } as const;
const connections = obj({
  /** A TCP connection must finish its TLS handshake within this. */
  handshakeTimeout: withDefault(duration({ minMs: 100, maxMs: 120_000 }), () => CONNECTION_DEFAULTS.handshakeTimeout),
  /** A request's headers must arrive within this (slowloris). */
  headersTimeout: withDefault(duration({ minMs: 100, maxMs: 300_000 }), () => CONNECTION_DEFAULTS.headersTimeout),
  /** A kept-alive connection with no request in flight is closed after this. */
  idleTimeout: withDefault(duration({ minMs: 100, maxMs: 3_600_000 }), () => CONNECTION_DEFAULTS.idleTimeout),
  /** Open connections one client address may hold (TLS handshakes in progress included). */
  maxPerAddress: withDefault(int({ min: 1, max: 1_000_000 }), () => CONNECTION_DEFAULTS.maxPerAddress),
});

const listener = obj({
  address: withDefault(hostname, () => '127.0.0.1'),
  port: required(port),
  cert: optional(str()),
  key: optional(str()),
  connections: withDefault(connections, () => ({ ...CONNECTION_DEFAULTS })),
});

const schema = obj({
  trustDomain: withDefault(str({ pattern: /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, hint: 'a lowercase DNS name like example.org' }), () => 'gatehouse.local'),
  /** This replica's name in audit chains; default: the host name. Unique per running process. */
  replicaId: optional(str({ pattern: /^[A-Za-z0-9._-]{1,128}$/, hint: 'letters, digits, ".", "_" or "-"' })),
  store: withDefault(
    byKind({
      embedded: obj({
        kind: required(oneOf('embedded')),
        path: required(str()),
        /** Bytes of address space to map for the data file (not memory); default: the store's DEFAULT_MAP_SIZE. */
        mapSize: optional(int({ min: 2 ** 20, max: 2 ** 40 })),
      }),
      etcd: obj({
        kind: required(oneOf('etcd')),
        endpoints: required(list(endpoint, { min: 1 })),
        timeoutMs: optional(int({ min: 50, max: 60_000 })),
        tls: optional(obj({ caFile: optional(str()), certFile: optional(str()), keyFile: optional(str()) })),
        auth: optional(obj({ username: required(str()), password: required(str()) })),
      }),
    }),
    () => ({ kind: 'embedded' as const, path: './data' }),
  ),
  bus: withDefault(
    byKind({
      memory: obj({ kind: required(oneOf('memory')), retain: optional(int({ min: 1 })) }),
      nats: obj({
        kind: required(oneOf('nats')),
        servers: required(list(str({ pattern: /^(nats|tls):\/\/[^\s/]+$|^[^\s:/]+:\d+$/, hint: 'a server like nats://127.0.0.1:4222' }), { min: 1 })),
        stream: optional(str({ pattern: /^[A-Za-z0-9_-]+$/, hint: 'a JetStream stream name (letters, digits, _ and -)' })),
        timeoutMs: optional(int({ min: 50, max: 60_000 })),
      }),
    }),
    () => ({ kind: 'memory' as const }),
  ),
  pki: withDefault(obj({ dir: required(str()) }), () => ({ dir: './certs' })),
  audit: withDefault(
    obj({
      /** Sign a checkpoint of this replica's chain every N events... */
      checkpointEvery: withDefault(int({ min: 1, max: 1_000_000 }), () => 1_000),
      /** ...or this often, whichever comes first. */
      checkpointInterval: withDefault(duration({ minMs: 1_000, maxMs: 3_600_000 }), () => 10_000),
      /** Where events wait on disk while the store is unreachable (relative to this file). */
      spoolDir: optional(str()),
    }),
    () => ({ checkpointEvery: 1_000, checkpointInterval: 10_000 }),
  ),
  tokens: withDefault(
    obj({
      /** iss of every minted token; default https://gatehouse.<trustDomain>. */
      issuer: optional(str({ pattern: /^https?:\/\/[^\s?#]+$/, hint: 'an https:// URL without query or fragment' })),
      /** Key-encryption key file (base64 of 32 bytes); GATEHOUSE_KEK overrides; default <pki.dir>/kek. */
      kekFile: optional(str()),
      ttl: withDefault(duration({ minMs: 1_000, maxMs: 900_000 }), () => 300_000),
      rotateAfter: withDefault(duration({ minMs: 60_000 }), () => 86_400_000),
    }),
    () => ({ ttl: 300_000, rotateAfter: 86_400_000 }),
  ),
  policies: withDefault(obj({ dir: required(str()) }), () => ({ dir: './policies' })),
  /** People's sessions (human listener). */
  sessions: withDefault(
    obj({
      idleTimeout: withDefault(duration({ minMs: 60_000, maxMs: 86_400_000 }), () => 900_000),
      absoluteTimeout: withDefault(duration({ minMs: 300_000, maxMs: 30 * 86_400_000 }), () => 43_200_000),
    }),
    () => ({ idleTimeout: 900_000, absoluteTimeout: 43_200_000 }),
  ),
  /** The login flow (human listener). */
  login: withDefault(
    obj({
      /** Where people sign in when routes use several hosts (one of webauthn.origins); default: on each host. */
      origin: optional(str({ pattern: /^https:\/\/[^\s/?#]+$/, hint: 'an origin like https://login.example.org' })),
      pendingTtl: withDefault(duration({ minMs: 30_000, maxMs: 3_600_000 }), () => 300_000),
      enrollmentTtl: withDefault(duration({ minMs: 60_000, maxMs: 30 * 86_400_000 }), () => 86_400_000),
      rateLimit: withDefault(obj({ max: withDefault(int({ min: 1 }), () => 30), window: withDefault(duration({ minMs: 1_000 }), () => 60_000) }), () => ({ max: 30, window: 60_000 })),
      lockout: withDefault(
        obj({
          maxFailures: withDefault(int({ min: 1, max: 1000 }), () => 5),
          window: withDefault(duration({ minMs: 1_000 }), () => 600_000),
          duration: withDefault(duration({ minMs: 1_000 }), () => 900_000),
        }),
        () => ({ maxFailures: 5, window: 600_000, duration: 900_000 }),
      ),
      /** /.gatehouse/auth/verify answers only these addresses when set (the front proxies). */
      forwardAuth: optional(obj({ trustedProxies: required(list(str({ pattern: /^[0-9A-Fa-f.:]+$/, hint: 'an IP address' }))) })),
    }),
    () => ({ pendingTtl: 300_000, enrollmentTtl: 86_400_000, rateLimit: { max: 30, window: 60_000 }, lockout: { maxFailures: 5, window: 600_000, duration: 900_000 } }),
  ),
  /** WebAuthn relying party (required with listeners.human). */
  webauthn: optional(
    obj({
      rpId: required(str({ pattern: /^[a-z0-9.-]+$/, hint: 'a lowercase host name like example.org' })),
      rpName: withDefault(str(), () => 'Gatehouse'),
      origins: required(list(str({ pattern: /^https:\/\/[^\s/?#]+$/, hint: 'an origin like https://login.example.org:8443' }), { min: 1 })),
      /** Authenticator models that may enroll (AAGUIDs, lowercase with dashes); absent: any. */
      allowedAAGUIDs: optional(list(str({ pattern: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, hint: 'an AAGUID like cb69481e-8ff7-4039-93ec-0a2729a154a8' }))),
      requireAttestation: withDefault(bool(), () => false),
      /** PEM files of trusted attestation roots (relative to the config file). */
      attestationRoots: withDefault(list(str()), () => []),
      challengeTtl: withDefault(duration({ minMs: 10_000, maxMs: 600_000 }), () => 120_000),
    }),
  ),
  /** Factors people must present, in order; per-role lists may only add factors. */
  mfa: withDefault(
    obj({
      require: withDefault(list(oneOf('webauthn-uv', 'totp'), { min: 1 }), () => ['webauthn-uv' as const, 'totp' as const]),
      /** Keys: "role" (in any namespace) or "namespace:role". */
      roles: optional(mapOf(list(oneOf('webauthn-uv', 'totp'), { min: 1 }))),
    }),
    () => ({ require: ['webauthn-uv' as const, 'totp' as const] }),
  ),
  listeners: withDefault(
    obj({
      service: optional(listener),
      human: optional(listener),
      admin: withDefault(listener, () => ({ address: '127.0.0.1', port: 9090, connections: { ...CONNECTION_DEFAULTS } })),
    }),
    () => ({ admin: { address: '127.0.0.1', port: 9090, connections: { ...CONNECTION_DEFAULTS } } }),
  ),
  routes: withDefault(
    list(
      obj({
        host: required(hostname),
        namespace: required(str({ pattern: /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, hint: 'a DNS label' })),
        service: required(str({ pattern: /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, hint: 'a DNS label' })),
        upstream: required(str({ pattern: /^https?:\/\/[^\s]+$/, hint: 'an http:// or https:// URL' })),
        /** Keep the client's own Authorization header (default: dropped). */
        passAuthorization: optional(bool()),
        /** Header that carries the minted token to the upstream (default authorization, as Bearer). */
        tokenHeader: optional(str({ pattern: /^[a-z0-9-]{1,64}$/, hint: 'a lowercase header name' })),
        /** Human listener: demand a WebAuthn assertion at most this old (e.g. 5m) on this route. */
        stepUp: optional(duration({ minMs: 10_000, maxMs: 86_400_000 })),
        /**
         * A request header whose name has an underscore: refused with 400 (default, as nginx and
         * Envoy do: CGI-style servers read X_Foo and X-Foo as one variable), or dropped.
         */
        headersWithUnderscores: withDefault(oneOf('reject', 'drop'), () => 'reject' as const),
      }),
    ),
    () => [],
  ),
});

type Parsed = NonNullable<ReturnType<typeof schema>>;
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

function formatPath(p: Path): string {
  return p.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('') || '(top level)';
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
  const parsed = schema(input, [], issues);
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

export async function loadConfig(file: string, env: Readonly<Record<string, string | undefined>> = {}): Promise<GatehouseConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new GatehouseError('ERR_CONFIG_NOT_FOUND', `cannot read config ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
  }
  return parseConfig(text, file, env);
}
