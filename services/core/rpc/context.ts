/**
 * What a handler knows about its call: who the caller is (from its TLS client
 * certificate), the credential chain it presented, its deadline, and a signal
 * that fires when the call is cancelled or its deadline passes.
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { Metadata, ServerUnaryCall } from '@grpc/grpc-js';
import { identityFromCertificate, type CertIdentity } from '../identity/certificate.js';
import { UnauthenticatedError } from '../errors.js';
import type { Logger } from '../log.js';
import { checkCertificateValidity } from './certificate-validity.js';
import type { TransportTrust } from './trust.js';

/** The metadata key that carries a credential chain, one value per link, root first. */
export const CREDENTIAL_METADATA_KEY = 'fedlab-credential';
/** docs/design.md §5: at most 8 links ... */
export const MAX_CHAIN_LINKS = 8;
/** ... and 16 KiB in all, checked before any signature work. */
export const MAX_CHAIN_BYTES = 16 * 1024;

/** Per-call context handed to every handler. */
export interface CallContext {
  /** Full method path, e.g. `/fedlab.v1.Federation/GetBundle`. */
  readonly method: string;
  /** The authenticated TLS peer. */
  readonly peer: CertIdentity;
  /** The credential chain from metadata (root first); empty when none was sent. Sizes are already checked. */
  readonly chain: readonly string[];
  readonly metadata: Metadata;
  /** Absolute deadline (ms since epoch), or Infinity if the client set none. */
  readonly deadline: number;
  /** Aborted when the client cancels, the deadline passes, or the server force-stops. */
  readonly signal: AbortSignal;
  /** Logger bound to this call (method, caller). */
  readonly log: Logger;
}

/** Reads the chain from metadata, enforcing the docs/design.md §5 size limits first. */
export function readCredentialChain(metadata: Metadata): string[] {
  const chain: string[] = [];
  let chars = 0;
  for (const v of metadata.get(CREDENTIAL_METADATA_KEY)) {
    const text = typeof v === 'string' ? v : v.toString('latin1');
    // HTTP/2 may deliver repeated metadata as one comma-joined value; compact JWS never contains a comma.
    for (const part of text.includes(',') ? text.split(',') : [text]) {
      const link = part.trim();
      if (link.length === 0) continue;
      chain.push(link);
      chars += link.length;
    }
  }
  if (chain.length > MAX_CHAIN_LINKS) {
    throw new UnauthenticatedError(`credential chain has ${chain.length} links; at most ${MAX_CHAIN_LINKS} are accepted`, {
      rule: 'size',
    });
  }
  // A UTF-16 unit is at most 3 bytes of UTF-8 (a surrogate pair 4 for 2 units): count bytes only when
  // the characters alone cannot settle it.
  if (chars * 3 > MAX_CHAIN_BYTES) {
    let total = 0;
    for (const link of chain) total += Buffer.byteLength(link);
    if (total > MAX_CHAIN_BYTES) {
      throw new UnauthenticatedError(`credential chain is larger than ${MAX_CHAIN_BYTES} bytes; present a shorter chain`, { rule: 'size' });
    }
  }
  return chain;
}

/**
 * Identities by HTTP/2 session: a connection's peer certificate cannot change while it is open (Node's
 * HTTP/2 disables TLS renegotiation on every session's socket), so a session's later calls reuse the
 * identity of its first — without `getAuthContext`, which rebuilds the peer certificate object on
 * every call. Keyed by the session object itself, never by anything a peer sends: a new connection,
 * whatever certificate it presents, is a new key. Weak, so a closed session's entry goes with it.
 */
const bySession = new WeakMap<object, SessionIdentity>();

/** A session's identity: the lookup of its first call, and its result once that is known (read without waiting). */
interface SessionIdentity {
  readonly lookup: Promise<CertIdentity>;
  known?: CertIdentity;
}

/**
 * The HTTP/2 session a grpc-js server call arrived on. grpc-js does not expose it; its server call
 * objects hold it as `call.call(.nextCall)*.stream.session` (1.10 to 1.14), so the shape is checked
 * and anything else gives undefined: the per-certificate path below then serves the call.
 */
function sessionOf(call: object): object | undefined {
  let c: unknown = (call as { call?: unknown }).call;
  for (let depth = 0; depth < 8 && typeof c === 'object' && c !== null; depth++) {
    const stream: unknown = (c as { stream?: unknown }).stream;
    if (typeof stream === 'object' && stream !== null) {
      const session: unknown = (stream as { session?: unknown }).session;
      return typeof session === 'object' && session !== null ? session : undefined;
    }
    c = (c as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

/** Identities are derived once per distinct peer certificate (a small map keyed by the DER hash). */
const identityCache = new Map<string, Promise<CertIdentity>>();
// Sized for a site's whole fleet: a management authority hears from every node (10,000 heartbeating nodes must not evict each other).
const IDENTITY_CACHE_MAX = 16_384;

/**
 * The verified TLS client certificate's identity; TLS has already checked it chains to a trusted CA,
 * and it is checked here to be within its validity period now (UNAUTHENTICATED otherwise).
 * With `trust`, the identity is accepted only if the CA it chains to vouches for its URN's domain.
 */
export async function peerIdentity(
  call: Pick<ServerUnaryCall<unknown, unknown>, 'getAuthContext'>,
  trust?: Pick<TransportTrust, 'checkClient'>,
): Promise<CertIdentity> {
  return accepted(await cachedIdentity(call), trust);
}

/**
 * {@link peerIdentity} without waiting, for a connection whose identity is known already (every call
 * after its first); undefined otherwise. The same checks run.
 */
export function knownPeerIdentity(
  call: Pick<ServerUnaryCall<unknown, unknown>, 'getAuthContext'>,
  trust?: Pick<TransportTrust, 'checkClient'>,
): CertIdentity | undefined {
  const session = sessionOf(call);
  const known = session && bySession.get(session)?.known;
  return known && accepted(known, trust);
}

/** The checks every call makes of its (cached) identity: a connection can outlive its certificate, and the CA trust can change. */
function accepted(identity: CertIdentity, trust: Pick<TransportTrust, 'checkClient'> | undefined): CertIdentity {
  checkCertificateValidity(identity);
  trust?.checkClient(identity);
  return identity;
}

function cachedIdentity(call: Pick<ServerUnaryCall<unknown, unknown>, 'getAuthContext'>): Promise<CertIdentity> {
  const session = sessionOf(call);
  const cached = session && bySession.get(session);
  if (cached) return cached.lookup;
  const lookup = certificateIdentity(call);
  if (session) {
    const entry: SessionIdentity = { lookup };
    bySession.set(session, entry);
    lookup.then(
      (id) => (entry.known = id),
      () => bySession.delete(session),
    );
  }
  return lookup;
}

async function certificateIdentity(call: Pick<ServerUnaryCall<unknown, unknown>, 'getAuthContext'>): Promise<CertIdentity> {
  const cert = call.getAuthContext()?.sslPeerCertificate;
  if (!cert?.raw || cert.raw.length === 0) {
    throw new UnauthenticatedError('no client certificate: connect with mutual TLS using a certificate from `fedlab certs issue`');
  }
  const key = createHash('sha256').update(cert.raw).digest('base64url');
  let identity = identityCache.get(key);
  if (!identity) {
    identity = identityFromCertificate(new X509Certificate(cert.raw));
    if (identityCache.size >= IDENTITY_CACHE_MAX) identityCache.delete(identityCache.keys().next().value as string);
    identityCache.set(key, identity);
    identity.catch(() => identityCache.delete(key));
  }
  return identity;
}
