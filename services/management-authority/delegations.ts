/**
 * What this management authority signs and revokes (docs/design.md §1.4, §5):
 * `MA → SA` credentials over the site's nodes for the site's own slice
 * authority or a federated peer's, and the site's revocation list (kept by
 * services/core/credentials' RevocationLedger: versioned, who revoked each
 * entry written in the same batch).
 */
import { createHash, type KeyObject, type X509Certificate } from 'node:crypto';
import { canonicalJson } from '../core/canonical-json.js';
import {
  issueRoot,
  isPrivilege,
  NODE_PRIVILEGES,
  revocationTarget,
  RevocationLedger,
  toPublicJwk,
  ledgerEntryToWire,
  type Privilege,
  type PublicJwk,
  type RevocationStore,
} from '../core/credentials/index.js';
import type { RevocationCaps } from '../core/credentials/revocation-config.js';
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, PermissionDeniedError } from '../core/errors.js';
import { identityOfField } from '../core/identity/certificate.js';
import { parseTarget, parseUrn, urnEquals } from '../core/identity/urn.js';
import type { Logger } from '../core/log.js';
import type { Store, Table } from '../core/store/store.js';
import { limitsFromWire } from '../core/rpc/limits.js';
import type {
  DelegateToSliceAuthorityRequest,
  DelegateToSliceAuthorityResponse,
  ManagementAuthorityListRevocationsRequest,
  ManagementAuthorityListRevocationsResponse,
  ManagementAuthorityRevokeRequest,
  ManagementAuthorityRevokeResponse,
} from '../generated/fedlab/v1/management_authority.js';
import type { Peer } from './access.js';
import type { Clock } from '../core/clock.js';
import { TABLES, type DelegationRecord } from './records.js';
import { requestId, text, urnField } from '../core/validate.js';

/** What an MA → SA credential grants when the request names no privileges: every node and sliver privilege. */
export const DEFAULT_SA_PRIVILEGES: readonly Privilege[] = NODE_PRIVILEGES;

/** Options of {@link Delegations}. */
export interface DelegationsOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  readonly maUrn: string;
  readonly maKey: KeyObject;
  readonly domain: string;
  readonly defaultTtlS: number;
  readonly maxTtlS: number;
  readonly revocations: RevocationStore;
  /** Which slice authorities may be delegated to (config `delegation_policy`); the own domain's only when absent. */
  readonly policy?: DelegationPolicy;
  /** The federation trust: which domains are peered and which CA vouches for a certificate. */
  readonly peers?: PeerView;
  /**
   * Called after each Revoke (the site's list goes to its nodes: own-revocation-push.ts), with the slice
   * authority when the revoked credential is one of this site's `MA → SA` delegations.
   */
  readonly onRevoked?: (revoked: { readonly delegatedTo?: string }) => void;
  /** Caps on the site's list (config `revocation.max_entries`); the defaults when absent. */
  readonly caps?: RevocationCaps;
}

/** Which slice authorities an MA may delegate to. */
export interface DelegationPolicy {
  /** Authorities of the MA's own domain. */
  readonly allowOwnDomain: boolean;
  /** Peered domains (any of their authorities) or exact authority URNs. */
  readonly allow: readonly string[];
}

/** What delegation needs to know of the federation (services/core/federation PeerTrust has it). */
export interface PeerView {
  /** CA certificates (PEM) of a peered domain; empty when it is not peered. */
  caPemsOf(domain: string): string[];
  /** The domains whose CAs directly issued a certificate. */
  issuerDomains(cert: X509Certificate): readonly string[];
}

/** Why the policy refuses delegation to `saUrn`, or undefined when it allows it. */
export function delegationRefusal(policy: DelegationPolicy, ownDomain: string, saUrn: string): string | undefined {
  const domain = parseUrn(saUrn).domain;
  const listed = policy.allow.some((entry) => (entry.startsWith('urn:') ? urnEquals(entry, saUrn) : entry === domain));
  if (listed) return undefined;
  if (domain === ownDomain) {
    return policy.allowOwnDomain
      ? undefined
      : `delegation_policy.allow_own_domain is false and delegation_policy.allow does not list ${saUrn}`;
  }
  return `delegation_policy.allow lists neither ${domain} nor ${saUrn}; add one of them to the MA's config to let this site delegate to that slice authority`;
}

/** MA → SA delegation and the site's revocation list. */
export class Delegations {
  private readonly table: Table<DelegationRecord>;
  private readonly ledger: RevocationLedger;

  constructor(private readonly deps: DelegationsOptions) {
    this.table = deps.store.table<DelegationRecord>(TABLES.delegations);
    this.ledger = new RevocationLedger({
      store: deps.store,
      revocations: deps.revocations,
      issuerKey: deps.maKey,
      issuerUrn: deps.maUrn,
      metaTable: TABLES.revocationMeta,
      now: () => deps.clock.now(),
      log: deps.log,
      ...(deps.caps ? { caps: deps.caps } : {}),
    });
  }

  /** Drops entries whose credentials have expired (each batch one atomic write); returns how many went. */
  async compact(): Promise<number> {
    let dropped = 0;
    for (let n = await this.ledger.compact(); n > 0; n = await this.ledger.compact()) dropped += n;
    return dropped;
  }

  /** DelegateToSliceAuthority (administrators only; the caller checked). Idempotent on request id. */
  async delegate(peer: Peer, req: DelegateToSliceAuthorityRequest): Promise<DelegateToSliceAuthorityResponse> {
    const rid = requestId(req.requestId);
    urnField('slice_authority_urn', req.sliceAuthorityUrn, 'authority');
    const refusal = delegationRefusal(this.deps.policy ?? { allowOwnDomain: true, allow: [] }, this.deps.domain, req.sliceAuthorityUrn);
    if (refusal)
      throw new PermissionDeniedError(`delegation to ${req.sliceAuthorityUrn} refused: ${refusal}`, { rule: 'delegation_policy' });
    const saDomain = parseUrn(req.sliceAuthorityUrn).domain;
    if (saDomain !== this.deps.domain && this.deps.peers && this.deps.peers.caPemsOf(saDomain).length === 0) {
      throw new FailedPreconditionError(
        `${saDomain} is not peered with this site; peer it first (\`fedlab federation peer add --domain ${saDomain} ...\`)`,
        { rule: 'peered' },
      );
    }
    const jwk = await this.saKey(req);
    const privileges = req.privileges.length ? req.privileges : [...DEFAULT_SA_PRIVILEGES];
    for (const p of privileges) {
      if (!isPrivilege(p) || !(p.startsWith('sliver.') || p.startsWith('node.'))) {
        throw new InvalidArgumentError(
          `privilege ${JSON.stringify(p.slice(0, 40))} cannot be delegated over nodes; use node.read or sliver.* privileges`,
          { field: 'privileges' },
        );
      }
    }
    const targets = req.targets.length ? req.targets : [`urn:fedlab:${this.deps.domain}:node:*`];
    for (const t of targets) {
      let parsed;
      try {
        parsed = parseTarget(t);
      } catch (err) {
        throw new InvalidArgumentError(`targets: ${(err as Error).message}`, { field: 'targets' });
      }
      if (parsed.domain !== this.deps.domain || (parsed.kind !== 'node' && parsed.kind !== 'sliver')) {
        throw new InvalidArgumentError(
          `target ${t} is not this site's nodes or slivers; this MA delegates only over urn:fedlab:${this.deps.domain}:node:*`,
          { field: 'targets' },
        );
      }
    }
    const ttl = req.ttlS === 0 ? this.deps.defaultTtlS : req.ttlS;
    if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > this.deps.maxTtlS) {
      throw new InvalidArgumentError(`ttl_s must be 1 to ${this.deps.maxTtlS} seconds (0: ${this.deps.defaultTtlS})`, { field: 'ttl_s' });
    }
    const limits = limitsFromWire(req.limits);
    const dlg = req.maxDelegations;
    if (!Number.isSafeInteger(dlg) || dlg < 0 || dlg > 7)
      throw new InvalidArgumentError('max_delegations must be 0 to 7 (a chain has at most 8 links)', { field: 'max_delegations' });
    const fingerprint = createHash('sha256')
      .update(
        canonicalJson({
          sa: req.sliceAuthorityUrn,
          jwk,
          privileges: [...privileges].sort(),
          targets: [...targets].sort(),
          limits,
          ttl,
          dlg,
        }),
      )
      .digest('base64url');
    const key = `${peer.urn} ${rid}`;
    const seen = await this.table.get(key);
    if (seen) {
      if (seen.fingerprint !== fingerprint)
        throw new AlreadyExistsError(`request id ${rid} was already used for another delegation; use a new request id`, {
          rule: 'request_id',
        });
      return { chain: [...seen.chain], jti: seen.jti, expiresAt: new Date(seen.expiresAt) };
    }
    const issued = await issueRoot({
      key: this.deps.maKey,
      issuer: this.deps.maUrn,
      subject: req.sliceAuthorityUrn,
      subjectKey: jwk,
      targets,
      privileges,
      dlg,
      limits,
      ttlSeconds: ttl,
      now: new Date(this.deps.clock.now()),
    });
    const rec: DelegationRecord = {
      fingerprint,
      sliceAuthorityUrn: req.sliceAuthorityUrn,
      chain: [...issued.chain],
      jti: issued.claims.jti,
      issuedAt: issued.claims.iat * 1000,
      expiresAt: issued.claims.exp * 1000,
    };
    await this.table.put(key, rec, { sync: true });
    this.deps.log.info(
      { sliceAuthority: req.sliceAuthorityUrn, jti: rec.jti, privileges, targets, expiresAt: new Date(rec.expiresAt).toISOString() },
      'delegated to a slice authority',
    );
    return { chain: [...rec.chain], jti: rec.jti, expiresAt: new Date(rec.expiresAt) };
  }

  private async saKey(req: DelegateToSliceAuthorityRequest): Promise<PublicJwk> {
    const hasJwk = req.sliceAuthorityJwk !== '';
    const hasCert = req.sliceAuthorityCertificatePem !== '';
    if (hasJwk === hasCert)
      throw new InvalidArgumentError('give exactly one of slice_authority_jwk and slice_authority_certificate_pem', {
        field: 'slice_authority_jwk',
      });
    if (hasCert) {
      const id = await identityOfField(req.sliceAuthorityCertificatePem, 'slice_authority_certificate_pem');
      if (id.urn !== req.sliceAuthorityUrn) {
        throw new InvalidArgumentError(`slice_authority_certificate_pem names ${id.urn}, not ${req.sliceAuthorityUrn}`, {
          field: 'slice_authority_certificate_pem',
        });
      }
      // A peered authority's certificate must come from its own domain's CA (as pinned), not just name it.
      const saDomain = id.parsedUrn.domain;
      if (saDomain !== this.deps.domain && this.deps.peers && !this.deps.peers.issuerDomains(id.certificate).includes(saDomain)) {
        throw new InvalidArgumentError(`slice_authority_certificate_pem is not issued by a CA of ${saDomain}'s pinned bundle`, {
          field: 'slice_authority_certificate_pem',
        });
      }
      return toPublicJwk(id.jwk as Record<string, unknown>);
    }
    if (req.sliceAuthorityJwk.length > 2048)
      throw new InvalidArgumentError('slice_authority_jwk is too long for a public key', { field: 'slice_authority_jwk' });
    let value: unknown;
    try {
      value = JSON.parse(req.sliceAuthorityJwk);
    } catch {
      throw new InvalidArgumentError('slice_authority_jwk is not JSON', { field: 'slice_authority_jwk' });
    }
    if (typeof value !== 'object' || value === null || 'd' in value) {
      throw new InvalidArgumentError('slice_authority_jwk must be a public JWK (no private members)', { field: 'slice_authority_jwk' });
    }
    try {
      return toPublicJwk(value as Record<string, unknown>);
    } catch (err) {
      throw new InvalidArgumentError(`slice_authority_jwk: ${(err as Error).message}`, { field: 'slice_authority_jwk' });
    }
  }

  /** The site's revocation list version. */
  get revocationVersion(): number {
    return this.ledger.version;
  }

  /** Revoke (administrators only; the caller checked). Revoking what is revoked returns the existing entry. */
  async revoke(peer: Peer, req: ManagementAuthorityRevokeRequest): Promise<ManagementAuthorityRevokeResponse> {
    const target = revocationTarget(req.jti, req.keyThumbprint);
    // Delegations are few (one per slice authority and renewal): a scan finds which one, if any, it was.
    // Its expiry goes with the entry, which then leaves the list once the credential is dead anyway.
    const delegation = target.jti !== undefined ? (await this.table.values()).find((d) => d.jti === target.jti) : undefined;
    const exp = delegation ? { exp: Math.ceil(delegation.expiresAt / 1000) } : {};
    const { entry, version } = await this.ledger.revoke(target, text('reason', req.reason, 200), peer.urn, exp);
    this.deps.onRevoked?.(delegation ? { delegatedTo: delegation.sliceAuthorityUrn } : {});
    return { entry: ledgerEntryToWire(entry), version };
  }

  /** ListRevocations: entries in version order, optionally since a version. */
  async list(req: ManagementAuthorityListRevocationsRequest): Promise<ManagementAuthorityListRevocationsResponse> {
    return this.ledger.listPage(req);
  }
}
