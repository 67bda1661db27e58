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
 * `PeerCertificate.subjectaltname`: "DNS:a, URI:spiffe://td/x"). Node quotes a value holding a
 * separator or an escape as a JSON string; such a value is kept quoted, so it can never pass for
 * a SPIFFE ID (which needs no quoting).
 */
export function uriSubjectAltNames(subjectAltName: string | undefined): string[] {
  const uris: string[] = [];
  if (subjectAltName === undefined) return uris;
  let i = 0;
  while (i < subjectAltName.length) {
    const colon = subjectAltName.indexOf(':', i);
    if (colon < 0) break;
    const type = subjectAltName.slice(i, colon);
    let end: number;
    if (subjectAltName[colon + 1] === '"') {
      // a quoted value ends at the first unescaped quote
      end = colon + 2;
      while (end < subjectAltName.length && subjectAltName[end] !== '"') end += subjectAltName[end] === '\\' ? 2 : 1;
      end += 1;
    } else {
      end = subjectAltName.indexOf(', ', colon + 1);
      if (end < 0) end = subjectAltName.length;
    }
    if (type === 'URI') uris.push(subjectAltName.slice(colon + 1, end));
    i = end + 2; // past ", "
  }
  return uris;
}

/**
 * A workload certificate's SPIFFE ID: its one URI SAN, when that is a spiffe:// URI (X509-SVID
 * §2: exactly one URI SAN; other SAN types may sit beside it). Undefined for none, several, or
 * another scheme; the ID is not parsed here (parseSpiffeId does that).
 */
export function spiffeIdOfSubjectAltName(subjectAltName: string | undefined): string | undefined {
  const uris = uriSubjectAltNames(subjectAltName);
  const only = uris.length === 1 ? uris[0] : undefined;
  return only !== undefined && only.startsWith(SCHEME) ? only : undefined;
}
