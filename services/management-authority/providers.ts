/**
 * Service providers registered with the site (docs/design.md §1.3). A provider
 * registers itself over mutual TLS with the certificate it authenticates
 * with, accepting the site's current terms by their digest. It may also send
 * a statement signed with its key (metadata `fedlab-terms-statement`, a
 * compact JWS of `{"sub": <provider>, "terms": <digest>, "iat": <s>}` with
 * typ `fedlab-terms+jwt`), which the site keeps as proof it can show others.
 */
import { createHash } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { canonicalJson } from '../core/canonical-json.js';
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, PermissionDeniedError } from '../core/errors.js';
import { identityOfField, parseCertificate } from '../core/identity/certificate.js';
import type { Logger } from '../core/log.js';
import type { Store, Table } from '../core/store/store.js';
import type { ProviderRegistration, RegisterServiceProviderRequest } from '../generated/fedlab/v1/management_authority.js';
import type { Peer } from './access.js';
import type { Clock } from '../core/clock.js';
import { TABLES, type ProviderRecord } from './records.js';
import { requestId, text, urnField } from '../core/validate.js';

/** The metadata key of an optional signed statement of acceptance. */
export const TERMS_STATEMENT_METADATA_KEY = 'fedlab-terms-statement';
/** The `typ` of such a statement. */
export const TERMS_STATEMENT_TYP = 'fedlab-terms+jwt';

/** `sha256:<hex>` of the terms' UTF-8 bytes. */
export function termsDigest(terms: string): string {
  return `sha256:${createHash('sha256').update(terms, 'utf8').digest('hex')}`;
}

interface RequestRecord {
  readonly fingerprint: string;
  readonly providerUrn: string;
}

/** Options of {@link ProviderRegistry}. */
export interface ProviderRegistryOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  readonly terms: string;
}

/** Registered providers. */
export class ProviderRegistry {
  private readonly table: Table<ProviderRecord>;
  private readonly requests: Table<RequestRecord>;
  private readonly registered = new Set<string>();
  readonly termsDigest: string;

  constructor(private readonly deps: ProviderRegistryOptions) {
    this.table = deps.store.table<ProviderRecord>(TABLES.providers);
    this.requests = deps.store.table<RequestRecord>(TABLES.providerRequests);
    this.termsDigest = termsDigest(deps.terms);
  }

  async load(): Promise<void> {
    for await (const [urn] of this.table.entries()) this.registered.add(urn);
  }

  /** Whether a provider registered. */
  isRegistered(providerUrn: string): boolean {
    return this.registered.has(providerUrn);
  }

  /** RegisterServiceProvider for the calling provider. */
  async register(peer: Peer, req: RegisterServiceProviderRequest, statement: string | undefined): Promise<ProviderRegistration> {
    const rid = requestId(req.requestId);
    urnField('provider_urn', req.providerUrn, 'sp');
    if (peer.urn !== req.providerUrn) {
      throw new PermissionDeniedError(`a provider registers itself: the caller is ${peer.urn}, not ${req.providerUrn}`, {
        rule: 'provider_urn',
      });
    }
    if (typeof req.certificatePem !== 'string' || req.certificatePem.length === 0 || req.certificatePem.length > 16_384) {
      throw new InvalidArgumentError('certificate_pem is required: the PEM certificate the provider authenticates with', {
        field: 'certificate_pem',
      });
    }
    const id = await identityOfField(req.certificatePem, 'certificate_pem');
    if (id.urn !== req.providerUrn)
      throw new InvalidArgumentError(`certificate_pem names ${id.urn}, not ${req.providerUrn}`, { field: 'certificate_pem' });
    if (id.thumbprint !== peer.thumbprint) {
      throw new InvalidArgumentError(
        'certificate_pem is not the certificate this connection is authenticated with; send your own TLS certificate',
        { field: 'certificate_pem' },
      );
    }
    const contact = text('contact', req.contact, 256);
    if (req.acceptedTermsDigest !== this.termsDigest) {
      throw new FailedPreconditionError(
        `accepted_terms_digest is not the digest of this site's current terms (${this.termsDigest}); read them with Aggregate.GetVersion and accept them`,
        {
          rule: 'terms',
        },
      );
    }
    if (statement !== undefined) await this.checkStatement(statement, req.certificatePem, req.providerUrn, peer.thumbprint);
    const fingerprint = createHash('sha256')
      .update(canonicalJson({ p: req.providerUrn, c: req.certificatePem, contact, t: req.acceptedTermsDigest }))
      .digest('base64url');
    const key = `${peer.urn} ${rid}`;
    const seen = await this.requests.get(key);
    if (seen && seen.fingerprint !== fingerprint) {
      throw new AlreadyExistsError(`request id ${rid} was already used for another registration; use a new request id`, {
        rule: 'request_id',
      });
    }
    const existing = await this.table.get(req.providerUrn);
    const same =
      existing &&
      existing.certificatePem === req.certificatePem &&
      existing.contact === contact &&
      existing.acceptedTermsDigest === req.acceptedTermsDigest &&
      (statement === undefined || existing.statement === statement);
    let rec: ProviderRecord;
    if (same) rec = existing;
    else {
      rec = {
        urn: req.providerUrn,
        certificatePem: req.certificatePem,
        keyThumbprint: id.thumbprint,
        contact,
        acceptedTermsDigest: req.acceptedTermsDigest,
        registeredAt: existing?.registeredAt ?? this.deps.clock.now(),
        ...(statement !== undefined ? { statement } : existing?.statement !== undefined ? { statement: existing.statement } : {}),
      };
    }
    await this.deps.store
      .batch()
      .put(this.table, rec.urn, rec)
      .put(this.requests, key, { fingerprint, providerUrn: rec.urn })
      .write({ sync: true });
    this.registered.add(rec.urn);
    if (!same)
      this.deps.log.info(
        { provider: rec.urn, terms: rec.acceptedTermsDigest, statement: rec.statement !== undefined },
        'service provider registered',
      );
    return toWire(rec);
  }

  private async checkStatement(jws: string, certPem: string, providerUrn: string, kid: string): Promise<void> {
    const bad = (why: string): never => {
      throw new InvalidArgumentError(`${TERMS_STATEMENT_METADATA_KEY}: ${why}`, { field: TERMS_STATEMENT_METADATA_KEY });
    };
    if (jws.length > 4096) bad('too long');
    let header;
    try {
      header = decodeProtectedHeader(jws);
    } catch {
      return bad('not a compact JWS');
    }
    if (header.typ !== TERMS_STATEMENT_TYP || header.kid !== kid || Object.keys(header).sort().join(',') !== 'alg,kid,typ') {
      bad(`the header must be exactly {alg, typ: "${TERMS_STATEMENT_TYP}", kid: <your key's thumbprint>}`);
    }
    let payload: Record<string, unknown>;
    try {
      const { payload: bytes } = await compactVerify(jws, parseCertificate(certPem).publicKey, { algorithms: ['ES256', 'EdDSA'] });
      payload = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
    } catch {
      return bad('the signature does not verify under the key of certificate_pem');
    }
    if (payload.sub !== providerUrn || payload.terms !== this.termsDigest || typeof payload.iat !== 'number') {
      bad(`the payload must be {"sub": "${providerUrn}", "terms": "${this.termsDigest}", "iat": <seconds>}`);
    }
  }

  /** One registration. */
  async get(providerUrn: string): Promise<ProviderRegistration | undefined> {
    const rec = await this.table.get(providerUrn);
    return rec ? toWire(rec) : undefined;
  }
}

function toWire(rec: ProviderRecord): ProviderRegistration {
  return {
    urn: rec.urn,
    certificatePem: rec.certificatePem,
    keyThumbprint: rec.keyThumbprint,
    contact: rec.contact,
    acceptedTermsDigest: rec.acceptedTermsDigest,
    registeredAt: new Date(rec.registeredAt),
  };
}
