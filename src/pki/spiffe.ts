// SPIFFE IDs for Gatehouse workloads: exactly spiffe://<trust-domain>/ns/<namespace>/sa/<service>.
// The one place that builds them, parses them and reads them off a certificate's SANs. The
// parser is strict on purpose: it runs on certificates presented by strangers, and an ID that
// two parsers could read differently must not reach policy.
import { GatehouseError } from '../errors.js';

export interface SpiffeIdParts {
  trustDomain: string;
  namespace: string;
  service: string;
}

const SCHEME = 'spiffe://';
/** The SPIFFE spec caps an ID at 2048 bytes. */
const MAX_ID_LENGTH = 2048;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Everything a valid ID may contain; anything else (%, ?, #, @, :, upper case, spaces, non-ASCII) is refused before parsing. */
const ALLOWED = /^[a-z0-9./-]*$/;

function invalid(what: string, input: unknown): GatehouseError {
  // Echo a bounded, escaped prefix only: the input may be hostile.
  const shown = typeof input === 'string' ? JSON.stringify(input.length > 80 ? `${input.slice(0, 80)}…` : input) : typeof input;
  return new GatehouseError('ERR_SPIFFE_ID_INVALID', `${what}: ${shown}`);
}

/** A lowercase DNS label (RFC 1123): namespaces and service names. */
export function isDnsLabel(value: string): boolean {
  return LABEL.test(value);
}

/** A lowercase DNS name of labels, at most 253 characters: the trust domain. */
export function isTrustDomain(value: string): boolean {
  return value.length <= 253 && value.split('.').every((l) => LABEL.test(l));
}

export function assertTrustDomain(value: string): string {
  if (typeof value !== 'string' || !isTrustDomain(value)) throw invalid('a trust domain must be a lowercase DNS name like example.org', value);
  return value;
}

/** Builds the SPIFFE ID of a workload; throws ERR_SPIFFE_ID_INVALID for a malformed part. */
export function spiffeId(trustDomain: string, namespace: string, service: string): string {
  assertTrustDomain(trustDomain);
  if (typeof namespace !== 'string' || !isDnsLabel(namespace)) throw invalid('a namespace must be a lowercase DNS label', namespace);
  if (typeof service !== 'string' || !isDnsLabel(service)) throw invalid('a service must be a lowercase DNS label', service);
  return `${SCHEME}${trustDomain}/ns/${namespace}/sa/${service}`;
}

/** The ID that names a trust domain itself (the CA's URI SAN). */
export function trustDomainId(trustDomain: string): string {
  return `${SCHEME}${assertTrustDomain(trustDomain)}`;
}

/** Parses spiffe://<td>/ns/<ns>/sa/<sa> and nothing else. */
export function parseSpiffeId(uri: string): SpiffeIdParts {
  // The input is a string of the allowed characters, not too long, with the scheme in lower case.
  if (typeof uri !== 'string') throw invalid('a SPIFFE ID must be a string', uri);
  if (uri.length > MAX_ID_LENGTH) throw invalid(`a SPIFFE ID is at most ${MAX_ID_LENGTH} characters`, uri);
  if (!uri.startsWith(SCHEME)) throw invalid('a SPIFFE ID starts with spiffe://', uri);
  const rest = uri.slice(SCHEME.length);
  if (!ALLOWED.test(rest)) {
    throw invalid('a SPIFFE ID may hold only a-z, 0-9, ".", "-" and "/" (no port, userinfo, query, fragment, percent-encoding or upper case)', uri);
  }
  // The trust domain runs to the first slash and is a DNS name.
  const slash = rest.indexOf('/');
  if (slash === -1) throw invalid('a workload SPIFFE ID has a path /ns/<namespace>/sa/<service>', uri);
  const trustDomain = rest.slice(0, slash);
  if (!isTrustDomain(trustDomain)) throw invalid('the trust domain must be a lowercase DNS name', uri);
  // The path is exactly four segments: ns, <namespace>, sa, <service> (this also refuses "", "." and ".." segments and a trailing slash).
  const segments = rest.slice(slash + 1).split('/');
  const [ns, namespace, sa, service] = segments;
  if (segments.length !== 4 || ns !== 'ns' || sa !== 'sa' || namespace === undefined || service === undefined) {
    throw invalid('the path must be exactly /ns/<namespace>/sa/<service>', uri);
  }
  if (!isDnsLabel(namespace)) throw invalid('the namespace must be a lowercase DNS label', uri);
  if (!isDnsLabel(service)) throw invalid('the service must be a lowercase DNS label', uri);
  return { trustDomain, namespace, service };
}

/** parseSpiffeId, or undefined for anything it refuses (for callers that word their own refusal). */
export function tryParseSpiffeId(uri: string): SpiffeIdParts | undefined {
  try {
    return parseSpiffeId(uri);
  } catch {
    return undefined;
  }
}

/** The trust domain an ID spiffe://<td> names (a CA's URI SAN); undefined for anything else. */
export function trustDomainOfId(uri: string): string | undefined {
  if (typeof uri !== 'string' || !uri.startsWith(SCHEME)) return undefined;
  const td = uri.slice(SCHEME.length);
  return isTrustDomain(td) ? td : undefined;
}

/**
 * The URI SANs of a certificate as Node prints them (`X509Certificate.subjectAltName`,
 * `PeerCertificate.subjectaltname`): entries joined by ", ". Node quotes an entry that holds a
 * separator or a quote; such an entry cannot be a valid SPIFFE ID, and is returned quoted so
 * that parseSpiffeId refuses it.
 */
export function uriSubjectAltNames(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined || subjectAltName === '') return [];
  return subjectAltName.split(', ').filter((e) => e.startsWith('URI:')).map((e) => e.slice(4));
}

/**
 * A workload certificate's SPIFFE ID: its one and only SAN, a spiffe:// URI (X509-SVID §2).
 * Undefined when there is no SAN, more than one, or another kind; the ID is not parsed here.
 */
export function spiffeIdOfSubjectAltName(subjectAltName: string | undefined): string | undefined {
  if (subjectAltName === undefined) return undefined;
  const entries = subjectAltName.split(', ');
  const [entry] = entries;
  if (entries.length !== 1 || entry === undefined || !entry.startsWith(`URI:${SCHEME}`)) return undefined;
  return entry.slice(4);
}
