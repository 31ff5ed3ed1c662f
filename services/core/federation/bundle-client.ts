/**
 * Fetching a peer's trust bundle over Federation.GetBundle: pinning it
 * (`fedlab federation peer add`) and refreshing it on a schedule.
 *
 * Pinning dials a server whose CA we do not trust yet. The connection is
 * authenticated by the pin instead: fetch the bundle (TLS not verified), check
 * its SHA-256 equals the pinned fingerprint and that it is of the expected
 * domain, then dial again trusting only that bundle's CA certificates and
 * require the server's certificate to chain to one of them and name a URN of
 * that domain (and to serve the same bundle). Only then is anything stored.
 *
 * A refresh dials trusting the peer's current bundle's CAs. A changed bundle
 * is accepted only if it chains from the current one (see
 * {@link bundleSucceeds}); otherwise the current one stays until an admin
 * re-pins.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { Client, credentials as grpcCredentials, Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { FederationService, type GetBundleResponse } from '../../generated/fedlab/v1/federation.js';
import { FailedPreconditionError, InvalidArgumentError, UnauthenticatedError, UnavailableError } from '../errors.js';
import { fedlabUrnsOf } from '../identity/certificate.js';
import { normalizeFingerprint, parseTrustBundle, serializeTrustBundle, type TrustBundle } from '../identity/trust-bundle.js';
import { isValidDomain, parseUrn } from '../identity/urn.js';
import { checkEndpoint } from '../endpoint.js';
import type { PeerRecord, RefreshOutcome } from './peers.js';

/** Our own certificate and key, presented when dialing (a public bundle endpoint needs none). */
export interface DialIdentity {
  readonly cert: string;
  readonly key: string;
}

/** Options of {@link fetchBundle}. */
export interface FetchBundleOptions {
  /** `host:port` of a server of the peer. */
  readonly endpoint: string;
  /** The domain whose bundle is asked for. */
  readonly domain: string;
  readonly identity?: DialIdentity;
  /**
   * Verify the server against these CA certificates (PEM) and require its URN to be in `domain`.
   * Absent: TLS does not authenticate the server; the caller must check the bundle against a pin.
   */
  readonly caPem?: string;
  /** Deadline of the call (ms). */
  readonly deadlineMs: number;
}

/** A bundle as a peer served it. */
export interface FetchedBundle {
  readonly bundle: TrustBundle;
  /** `sha256:<hex>` of the bytes served (equal to the canonical form's). */
  readonly fingerprint: string;
  /** The server's URN, when TLS verified it. */
  readonly serverUrn?: string;
}

function sha256(text: string): string {
  return `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
}

function describeGrpcError(err: ServiceError, endpoint: string): string {
  const d = err.details || err.message;
  if (err.code === Status.UNAVAILABLE) {
    return `${endpoint} is unreachable or refused the TLS connection (${d}); check the address, and dial the peer's public bundle endpoint (federation.bundle_listen) unless the peer already trusts your certificate`;
  }
  if (err.code === Status.DEADLINE_EXCEEDED) return `${endpoint} did not answer in time`;
  return `${endpoint} answered ${Status[err.code] ?? err.code}: ${d}`;
}

/** Fetches the bundle a server serves for `domain`, checking its hash and form (not a pin). */
export async function fetchBundle(o: FetchBundleOptions): Promise<FetchedBundle> {
  checkEndpoint(o.endpoint);
  if (!isValidDomain(o.domain)) throw new InvalidArgumentError(`${JSON.stringify(o.domain.slice(0, 80))} is not a lower-case DNS name`);
  let serverUrn: string | undefined;
  let serverProblem: string | undefined;
  const check = (_host: string, cert: PeerCertificate): Error | undefined => {
    const urns = fedlabUrnsOf(cert);
    if (urns.length !== 1) serverProblem = 'the server certificate does not name exactly one urn:fedlab URN';
    else if (parseUrn(urns[0] as string).domain !== o.domain)
      serverProblem = `the server certificate names ${urns[0]}, which is not in ${o.domain}`;
    else serverUrn = urns[0];
    return serverProblem ? new Error(serverProblem) : undefined;
  };
  const creds = grpcCredentials.createSsl(
    o.caPem ? Buffer.from(o.caPem) : null,
    o.identity ? Buffer.from(o.identity.key) : null,
    o.identity ? Buffer.from(o.identity.cert) : null,
    o.caPem ? { checkServerIdentity: check } : { rejectUnauthorized: false },
  );
  const host = o.endpoint.slice(0, o.endpoint.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  // TLS sends no IP address as a server name (RFC 6066); the server's identity is checked by URN, not name.
  const channelOptions = isIP(host)
    ? { 'grpc.enable_channelz': 0, 'grpc.ssl_target_name_override': 'fedlab-peer.invalid' }
    : { 'grpc.enable_channelz': 0 };
  const client = new Client(o.endpoint, creds, channelOptions);
  const def = FederationService.getBundle;
  let res: GetBundleResponse;
  try {
    res = await new Promise<GetBundleResponse>((resolve, reject) => {
      client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        { domain: o.domain },
        new Metadata(),
        { deadline: Date.now() + o.deadlineMs },
        (err: ServiceError | null, value?: GetBundleResponse) => (err || !value ? reject(err ?? new Error('no answer')) : resolve(value)),
      );
    });
  } catch (err) {
    if (serverProblem) throw new UnauthenticatedError(`${o.endpoint}: ${serverProblem}`);
    if (typeof err === 'object' && err !== null && 'code' in err) {
      const e = err as ServiceError;
      if (e.code === Status.NOT_FOUND || e.code === Status.INVALID_ARGUMENT)
        throw new FailedPreconditionError(describeGrpcError(e, o.endpoint));
      throw new UnavailableError(describeGrpcError(e, o.endpoint));
    }
    throw new UnavailableError(`${o.endpoint}: ${(err as Error).message}`);
  } finally {
    client.close();
  }
  const fingerprint = sha256(res.bundleJson);
  if (res.fingerprint !== fingerprint)
    throw new UnauthenticatedError(`${o.endpoint} served a bundle whose stated fingerprint is not the hash of its bytes`);
  let bundle: TrustBundle;
  try {
    bundle = await parseTrustBundle(res.bundleJson);
  } catch (err) {
    throw new FailedPreconditionError(`${o.endpoint} served an invalid bundle: ${(err as Error).message}`);
  }
  if (serializeTrustBundle(bundle) !== res.bundleJson)
    throw new FailedPreconditionError(`${o.endpoint} served a bundle that is not in canonical form`);
  if (bundle.domain !== o.domain || res.domain !== o.domain) {
    throw new FailedPreconditionError(
      `${o.endpoint} serves the bundle of ${bundle.domain}, not of ${o.domain}; check --domain and --endpoint`,
    );
  }
  return { bundle, fingerprint, ...(serverUrn ? { serverUrn } : {}) };
}

/** Options of {@link pinPeer}. */
export interface PinPeerOptions {
  readonly domain: string;
  readonly endpoint: string;
  /** The fingerprint the peer's admin gave out of band (`sha256:<hex>`, as `fedlab certs bundle` prints it). */
  readonly fingerprint: string;
  readonly identity?: DialIdentity;
  readonly deadlineMs?: number;
  /** This side's domain: peering with oneself is refused. */
  readonly ownDomain?: string;
  readonly now?: Date;
}

/** Fetches a peer's bundle, authenticated by the pinned fingerprint, and returns the record to store (nothing is written here). */
export async function pinPeer(o: PinPeerOptions): Promise<PeerRecord> {
  if (!isValidDomain(o.domain))
    throw new InvalidArgumentError(`--domain ${JSON.stringify(o.domain.slice(0, 80))} is not a lower-case DNS name`);
  if (o.ownDomain !== undefined && o.domain === o.ownDomain)
    throw new InvalidArgumentError(`${o.domain} is this service's own domain; peer with other domains only`);
  const pin = normalizeFingerprint(o.fingerprint);
  checkEndpoint(o.endpoint, '--endpoint');
  const deadlineMs = o.deadlineMs ?? 10_000;
  const first = await fetchBundle({ endpoint: o.endpoint, domain: o.domain, ...(o.identity ? { identity: o.identity } : {}), deadlineMs });
  if (first.fingerprint !== pin) {
    throw new UnauthenticatedError(
      `the bundle ${o.endpoint} serves for ${o.domain} has fingerprint ${first.fingerprint}, not the pinned ${pin}; nothing was stored. Check the fingerprint with the peer's admin (\`fedlab certs inspect BUNDLE\`)`,
    );
  }
  // Now the CAs are known and authentic: the server must prove it holds a certificate from one of them.
  const second = await fetchBundle({
    endpoint: o.endpoint,
    domain: o.domain,
    ...(o.identity ? { identity: o.identity } : {}),
    caPem: first.bundle.ca_certs.join(''),
    deadlineMs,
  });
  if (second.fingerprint !== pin) throw new UnauthenticatedError(`${o.endpoint} changed its bundle between two calls; try again`);
  const now = (o.now ?? new Date()).toISOString();
  return {
    v: 1,
    domain: o.domain,
    endpoint: o.endpoint,
    pinned_fingerprint: pin,
    pinned_at: now,
    bundle: first.bundle,
    fingerprint: pin,
    accepted_at: now,
  };
}

/**
 * Whether `next` may replace `current` (both of one domain) on a refresh: undefined when it may,
 * else why not. It may when its serial is higher and it chains from `current`: at least one of its
 * CA certificates is one of `current`'s CA certificates, or is signed by one of them (a CA
 * rollover announced under the old CA). Authorities and the revocation version may change freely:
 * the bundle came over TLS authenticated by `current`'s CAs.
 */
export function bundleSucceeds(current: TrustBundle, next: TrustBundle): string | undefined {
  if (next.domain !== current.domain) return `the new bundle is of ${next.domain}, not ${current.domain}`;
  if (next.serial <= current.serial) return `its serial ${next.serial} is not higher than the trusted serial ${current.serial}`;
  const old = current.ca_certs.map((p) => new X509Certificate(p));
  const oldDer = new Set(old.map((c) => c.raw.toString('base64')));
  for (const pem of next.ca_certs) {
    const c = new X509Certificate(pem);
    if (oldDer.has(c.raw.toString('base64'))) return undefined;
    if (old.some((o) => c.checkIssued(o) && c.verify(o.publicKey))) return undefined;
  }
  return 'none of its CA certificates is a CA certificate of the trusted bundle or signed by one; an admin must re-pin it (`fedlab federation peer add`)';
}

/** Result of {@link refreshPeer}: what happened, and the new record when a new bundle was accepted. */
export interface RefreshResult {
  readonly outcome: RefreshOutcome;
  readonly record?: PeerRecord;
}

/** Fetches a peer's bundle again and decides whether to accept it (nothing is written here). */
export async function refreshPeer(
  record: PeerRecord,
  o: { readonly identity?: DialIdentity; readonly deadlineMs: number; readonly now?: Date },
): Promise<RefreshResult> {
  const at = (o.now ?? new Date()).toISOString();
  let fetched: FetchedBundle;
  try {
    fetched = await fetchBundle({
      endpoint: record.endpoint,
      domain: record.domain,
      caPem: record.bundle.ca_certs.join(''),
      deadlineMs: o.deadlineMs,
      ...(o.identity ? { identity: o.identity } : {}),
    });
  } catch (err) {
    return { outcome: { at, result: 'unreachable', detail: (err as Error).message.slice(0, 300) } };
  }
  if (fetched.fingerprint === record.fingerprint) return { outcome: { at, result: 'unchanged', fingerprint: fetched.fingerprint } };
  const why = bundleSucceeds(record.bundle, fetched.bundle);
  if (why) return { outcome: { at, result: 'refused', fingerprint: fetched.fingerprint, detail: why } };
  const outcome: RefreshOutcome = { at, result: 'accepted', fingerprint: fetched.fingerprint };
  return {
    outcome,
    record: { ...record, bundle: fetched.bundle, fingerprint: fetched.fingerprint, accepted_at: at, last_refresh: outcome },
  };
}
