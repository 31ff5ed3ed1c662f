/**
 * What a service trusts across domains, kept current while it runs: the CA
 * certificates its TLS accepts (its own domain's, from `tls.ca` and its own
 * bundle, plus every peered bundle's), which domain each of those CAs vouches
 * for, and a credentials TrustStore holding its own bundle and every peered
 * bundle (each scoped to its own domain's objects).
 *
 * It watches the peers directory and the own bundle file; a change reaches
 * TLS through grpc-js certificate providers (new connections use the new CA
 * set, no restart), and the TrustStore at once.
 *
 * A caller's (or a server's) identity is accepted only if its URN's domain is
 * the domain of the CA it chains to: a domain's CA vouches only for its own
 * domain's names, so a peer cannot mint certificates for ours or a third's.
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, PeerCertificate, SecureContextOptions } from 'node:tls';
import { experimental, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import { TrustStore } from '../credentials/trust-store.js';
import { UnauthenticatedError } from '../errors.js';
import { fedlabUrnsOf, splitPemCertificates, type CertIdentity } from '../identity/certificate.js';
import { parseUrn } from '../identity/urn.js';
import type { Logger } from '../log.js';
import type { TlsMaterial } from '../rpc/server.js';
import type { ServerIdentityCheck, TransportTrust } from '../rpc/trust.js';
import type { BundleSource, PublishedBundle } from './bundle-source.js';
import { PeerDirectory, type PeerRecord } from './peers.js';

type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

/** A CA certificate and the domain it vouches for. */
interface CaEntry {
  readonly cert: X509Certificate;
  readonly pem: string;
  readonly der: string;
  readonly domain: string;
}

/** Options of {@link PeerTrust.open}. */
export interface PeerTrustOptions {
  /** This service's domain. */
  readonly domain: string;
  /** This service's TLS material: its certificate and key, and its own domain's CA certificates (`tls.ca`). */
  readonly tls: TlsMaterial;
  /** This domain's bundle (its CA certificates also vouch for this domain; its authorities go into the TrustStore). */
  readonly bundle?: BundleSource;
  /** The peers directory (`federation.peers_dir`). */
  readonly peersDir: string;
  readonly log: Logger;
  /** How often to look for changes (ms); 2 s by default. */
  readonly reloadIntervalMs?: number;
  /** The credentials TrustStore to keep current; a new, empty one by default. */
  readonly trustStore?: TrustStore;
}

/**
 * Mutual-TLS server credentials whose context (CA set, own certificate) can be replaced while the
 * server runs: grpc-js applies an update to its listening sockets, so new connections use it.
 * (grpc-js 1.14's certificate-provider server credentials start without a context and only get one
 * on the next provider update after the server is bound, so a server could refuse every connection
 * until the peers change; these start with the full context.)
 */
class ReloadableServerCredentials extends ServerCredentials {
  constructor(initial: SecureContextOptions) {
    super({ requestCert: true, rejectUnauthorized: true }, initial);
  }

  update(options: SecureContextOptions): void {
    this.updateSecureContextOptions(options);
  }

  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

function derOf(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('hex');
}

/** Trust across domains, kept current from the peers directory. Implements the RPC layer's {@link TransportTrust}. */
export class PeerTrust implements TransportTrust {
  /** The credentials TrustStore: this domain's bundle and every peered bundle, each for its own domain's objects. */
  readonly trustStore: TrustStore;
  private readonly directory: PeerDirectory;
  private readonly ownCas: CaEntry[] = [];
  private readonly localIssuers: CaEntry[] = [];
  private ownBundle: PublishedBundle | undefined;
  private peerRecords: PeerRecord[] = [];
  private cas: CaEntry[] = [];
  private caPemText = '';
  private generation = 0;
  /** checkClient's verdicts by identity (identities are kept per certificate), valid for one generation. */
  private readonly clientVerdicts = new WeakMap<CertIdentity, { readonly gen: number; readonly why: string | undefined }>();
  private stampSeen = '\u0000';
  private readonly caListeners = new Set<CaListener>();
  private readonly serverCreds = new Set<ReloadableServerCredentials>();
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly changeListeners = new Set<() => void>();
  private readonly verdicts = new WeakMap<X509Certificate, { readonly gen: number; readonly domains: readonly string[] }>();
  private timer: NodeJS.Timeout | undefined;
  private reloading: Promise<boolean> | undefined;
  private readonly provider: experimental.CertificateProvider;

  private constructor(private readonly o: PeerTrustOptions) {
    this.trustStore = o.trustStore ?? new TrustStore();
    this.directory = new PeerDirectory(o.peersDir);
    for (const pem of splitPemCertificates(o.tls.caCerts)) this.ownCas.push(this.entry(pem, o.domain));
    // Intermediates after the service's own certificate vouch for this domain too.
    for (const pem of splitPemCertificates(o.tls.cert).slice(1)) this.localIssuers.push(this.entry(pem, o.domain));
    this.provider = {
      addCaCertificateListener: (l: CaListener) => {
        this.caListeners.add(l);
        l({ caCertificate: Buffer.from(this.caPemText) });
      },
      removeCaCertificateListener: (l: CaListener) => {
        this.caListeners.delete(l);
      },
      addIdentityCertificateListener: (l: IdentityListener) => {
        this.identityListeners.add(l);
        l({ certificate: Buffer.from(o.tls.cert), privateKey: Buffer.from(o.tls.key) });
      },
      removeIdentityCertificateListener: (l: IdentityListener) => {
        this.identityListeners.delete(l);
      },
    };
  }

  /** Loads the own bundle and the peers directory once; call {@link start} to follow changes. */
  static async open(options: PeerTrustOptions): Promise<PeerTrust> {
    const trust = new PeerTrust(options);
    trust.rebuild();
    await trust.reload();
    return trust;
  }

  /** The peers directory this trust follows. */
  get peersDir(): string {
    return this.o.peersDir;
  }

  /** This service's domain. */
  get domain(): string {
    return this.o.domain;
  }

  /** Starts watching for changes (every `reloadIntervalMs`). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.reload().catch((err: unknown) => this.o.log.warn({ err: (err as Error).message }, 'could not reload the peers directory'));
    }, this.o.reloadIntervalMs ?? 2_000);
    this.timer.unref();
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.reloading?.catch(() => undefined);
  }

  /** Calls `listener` after every change of what is trusted. */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /**
   * Re-reads the peers directory and the own bundle if they changed; true when something changed.
   * A record that does not parse is left out (and logged): what it would trust is not trusted.
   */
  reload(): Promise<boolean> {
    this.reloading ??= this.doReload().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async doReload(): Promise<boolean> {
    const own = this.o.bundle ? await this.o.bundle.current() : undefined;
    const stamp = `${own?.fingerprint ?? ''}#${await this.directory.stamp()}`;
    if (stamp === this.stampSeen) return false;
    const { records, errors } = await this.directory.list();
    for (const e of errors) this.o.log.warn({ file: e.file, err: e.error }, 'peer record ignored');
    const peers = records.filter((r) => {
      if (r.domain === this.o.domain) {
        this.o.log.warn({ domain: r.domain }, 'peer record of this service’s own domain ignored');
        return false;
      }
      return true;
    });
    this.stampSeen = stamp;
    this.ownBundle = own;
    this.peerRecords = peers;
    this.rebuild();
    this.o.log.info(
      { peers: peers.map((p) => ({ domain: p.domain, fingerprint: p.fingerprint, serial: p.bundle.serial })) },
      'federation trust loaded',
    );
    return true;
  }

  /** The peered domains' records, as last loaded. */
  peers(): readonly PeerRecord[] {
    return this.peerRecords;
  }

  /** One peered domain's record, as last loaded. */
  peer(domain: string): PeerRecord | undefined {
    return this.peerRecords.find((p) => p.domain === domain);
  }

  /** The CA certificates TLS accepts now (PEM, concatenated). */
  caPem(): string {
    return this.caPemText;
  }

  /** CA certificates (PEM) that vouch for `domain`: this domain's, or a peered domain's; empty when it is not peered. */
  caPemsOf(domain: string): string[] {
    return this.cas.filter((c) => c.domain === domain).map((c) => c.pem);
  }

  /**
   * Adds an intermediate CA that issues this domain's certificates without being in `tls.ca` or the
   * bundle (a management authority's enrolment CA): callers it certifies are attributed to this domain.
   */
  addLocalIssuer(pem: string): void {
    for (const p of splitPemCertificates(pem)) {
      const e = this.entry(p, this.o.domain);
      if (!this.localIssuers.some((l) => l.der === e.der)) this.localIssuers.push(e);
    }
    this.rebuild();
  }

  /** The domains whose CAs vouch for (directly issued) `cert`. */
  issuerDomains(cert: X509Certificate): readonly string[] {
    const seen = this.verdicts.get(cert);
    if (seen && seen.gen === this.generation) return seen.domains;
    const domains = new Set<string>();
    for (const ca of [...this.cas, ...this.localIssuers]) {
      if (cert.checkIssued(ca.cert) && cert.verify(ca.cert.publicKey)) domains.add(ca.domain);
    }
    const out = [...domains].sort();
    this.verdicts.set(cert, { gen: this.generation, domains: out });
    return out;
  }

  /** Why a certificate's URN is not vouched for by the CA it chains to, or undefined when it is. */
  private refusal(urn: string, domains: readonly string[], who: 'client' | 'server'): string | undefined {
    let domain: string;
    try {
      domain = parseUrn(urn).domain;
    } catch {
      return `the ${who} certificate's URN ${urn.slice(0, 120)} is malformed`;
    }
    if (domains.includes(domain)) return undefined;
    if (domains.length === 0) {
      // Issued by a CA we cannot see (an intermediate not in any bundle): before any peering only
      // this domain's CAs are trusted, so the chain can only end at one of them.
      if (this.peerRecords.length === 0 && domain === this.o.domain) return undefined;
      return `the ${who} certificate of ${urn} is issued by a CA that is in no trusted bundle; a domain that issues through intermediate CAs lists them in its bundle's ca_certs`;
    }
    return `the ${who} certificate names ${urn}, but it is issued by the CA of ${domains.join(', ')}; a domain's CA vouches only for its own domain's names`;
  }

  checkClient(identity: CertIdentity): void {
    // Asked on every call and every session message: the verdict is kept per identity while the trust is unchanged.
    let seen = this.clientVerdicts.get(identity);
    if (!seen || seen.gen !== this.generation) {
      seen = { gen: this.generation, why: this.refusal(identity.urn, this.issuerDomains(identity.certificate), 'client') };
      this.clientVerdicts.set(identity, seen);
    }
    if (seen.why) throw new UnauthenticatedError(seen.why, { rule: 'ca-domain' });
  }

  checkServer(cert: PeerCertificate): Error | undefined {
    const urns = fedlabUrnsOf(cert);
    if (urns.length !== 1)
      return new Error(`the server certificate has ${urns.length === 0 ? 'no' : 'more than one'} urn:fedlab URI subjectAltName`);
    // Node gives the chain with its issuers, but links them by name only (and from what the server
    // sent): follow it only while each link's signature verifies, and let the first CA we know on it
    // say which domain vouches.
    let domains: readonly string[] = [];
    const seen = new Set<PeerCertificate>([cert]);
    const issuerOf = (c: PeerCertificate): DetailedPeerCertificate | undefined => (c as Partial<DetailedPeerCertificate>).issuerCertificate;
    let child = cert.raw ? new X509Certificate(cert.raw) : undefined;
    for (let c = issuerOf(cert); child && c?.raw && !seen.has(c); c = issuerOf(c)) {
      seen.add(c);
      const issuer = new X509Certificate(c.raw);
      if (!child.checkIssued(issuer) || !child.verify(issuer.publicKey)) break;
      const der = derOf(issuer);
      const hits = [...new Set([...this.cas, ...this.localIssuers].filter((e) => e.der === der).map((e) => e.domain))].sort();
      if (hits.length > 0) {
        domains = hits;
        break;
      }
      child = issuer;
    }
    if (domains.length === 0 && cert.raw) domains = this.issuerDomains(new X509Certificate(cert.raw));
    const why = this.refusal(urns[0] as string, domains, 'server');
    return why ? new Error(why) : undefined;
  }

  serverCredentials(): ServerCredentials {
    const creds = new ReloadableServerCredentials(this.contextOptions());
    this.serverCreds.add(creds);
    return creds;
  }

  private contextOptions(): SecureContextOptions {
    return { ca: Buffer.from(this.caPemText), cert: Buffer.from(this.o.tls.cert), key: Buffer.from(this.o.tls.key) };
  }

  channelCredentials(check: ServerIdentityCheck): ChannelCredentials {
    return experimental.createCertificateProviderChannelCredentials(this.provider, this.provider, { checkServerIdentity: check });
  }

  private entry(pem: string, domain: string): CaEntry {
    const cert = new X509Certificate(pem);
    return { cert, pem: pem.endsWith('\n') ? pem : `${pem}\n`, der: derOf(cert), domain };
  }

  /** Recomputes the CA set and the TrustStore from what is loaded, then tells the listeners. */
  private rebuild(): void {
    const cas: CaEntry[] = [...this.ownCas];
    const add = (pem: string, domain: string): void => {
      try {
        const e = this.entry(pem, domain);
        if (!cas.some((c) => c.der === e.der && c.domain === domain)) cas.push(e);
      } catch (err) {
        this.o.log.warn({ domain, err: (err as Error).message }, 'CA certificate ignored');
      }
    };
    for (const pem of this.ownBundle?.bundle.ca_certs ?? []) add(pem, this.o.domain);
    for (const p of this.peerRecords) for (const pem of p.bundle.ca_certs) add(pem, p.domain);
    this.cas = cas;
    this.caPemText = [...new Set(cas.map((c) => c.pem))].join('');
    this.generation++;
    this.syncTrustStore();
    const update = { caCertificate: Buffer.from(this.caPemText) };
    for (const l of this.caListeners) l(update);
    if (this.serverCreds.size > 0) {
      const options = this.contextOptions();
      for (const c of this.serverCreds) c.update(options);
    }
    for (const l of this.changeListeners) {
      try {
        l();
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'federation change listener failed');
      }
    }
  }

  private syncTrustStore(): void {
    const wanted = new Map<string, PublishedBundle['bundle']>();
    if (this.ownBundle) wanted.set(this.o.domain, this.ownBundle.bundle);
    for (const p of this.peerRecords) wanted.set(p.domain, p.bundle);
    for (const d of this.trustStore.domains()) if (!wanted.has(d)) this.trustStore.removeBundle(d);
    for (const [domain, bundle] of wanted) {
      const have = this.trustStore.bundle(domain);
      if (have && JSON.stringify(have) === JSON.stringify(bundle)) continue;
      // A re-pinned peer may go back to a lower serial: replace rather than update.
      if (have) this.trustStore.removeBundle(domain);
      try {
        this.trustStore.addBundle(bundle);
      } catch (err) {
        this.o.log.warn({ domain, err: (err as Error).message }, 'bundle not trusted for credentials');
      }
    }
  }
}
