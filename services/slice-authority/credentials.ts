/**
 * Slice credentials and the slice authority's revocation list.
 *
 * IssueSliceCredential signs a root `SA → holder` over one slice with the
 * authority's key (the key its sites' `MA → SA` chains were issued to, which
 * the aggregates hand to node managers in CreateSliver). A node manager trusts
 * that key for that slice only, so the holder can read, exec in, control and
 * renew the slice's slivers there directly; DeleteSliver stays with the node's
 * owner and MA. The provider may attenuate it for its members (`dlg`). The
 * credential is bound to the slice's incarnation (claim `inc`), as are its
 * slivers, so it never reaches a later slice of the same name.
 *
 * Revoke and ListRevocations keep the authority's own list (services/core's
 * RevocationLedger, who revoked each entry written with it): administrators
 * revoke anything; a provider revokes the credentials issued for its own
 * slices, and a credential it delegated under one of them to a member when the
 * call carries the member's whole chain as proof (member-chain.ts). A provider
 * key on the list can no longer use the authority (see Accounts).
 *
 * Each entry of a credential whose expiry is known (one this authority issued,
 * or a member's delegation proven by its chain) carries it, and leaves the list
 * once it passed ({@link SliceCredentials.compact}). Live entries are capped in
 * all and, for each provider, per revoker (`revocation.max_entries`,
 * `revocation.max_entries_per_revoker`): past either, Revoke answers
 * RESOURCE_EXHAUSTED naming the cap.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../core/canonical-json.js';
import {
  issueRoot,
  isPrivilege,
  revocationTarget,
  RevocationLedger,
  ledgerEntryToWire,
  type Privilege,
  type PublicJwk,
  type RevocationStore,
} from '../core/credentials/index.js';
import type { RevocationCaps } from '../core/credentials/revocation-config.js';
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, PermissionDeniedError } from '../core/errors.js';
import { identityFromCertificate, parseCertificate } from '../core/identity/certificate.js';
import type { Logger } from '../core/log.js';
import type { Store, Table } from '../core/store/store.js';
import { limitsFromWire } from '../core/rpc/limits.js';
import {
  IssueSliceCredentialRequest,
  type IssueSliceCredentialResponse,
  type SliceAuthorityListRevocationsRequest,
  type SliceAuthorityListRevocationsResponse,
  type SliceAuthorityRevokeRequest,
  type SliceAuthorityRevokeResponse,
} from '../generated/fedlab/v1/slice_authority.js';
import type { Caller } from './accounts.js';
import { checkMemberChain, type IssuedRoot } from './member-chain.js';
import { TABLES, type CredentialRecord, type SliceRecord } from './records.js';
import { requestId, text } from '../core/validate.js';

/** What a slice credential grants when the request names no privileges. */
export const SLICE_PRIVILEGES: readonly Privilege[] = [
  'sliver.read',
  'sliver.exec',
  'sliver.control',
  'sliver.renew',
  'sliver.create',
  'sliver.delete',
  'slice.read',
  'slice.renew',
  'slice.delete',
  'slice.create',
];

/** Options of {@link SliceCredentials}. */
export interface SliceCredentialsOptions {
  readonly store: Store;
  readonly log: Logger;
  readonly now: () => number;
  readonly saUrn: string;
  readonly saKey: KeyObject;
  readonly saJwk: PublicJwk;
  readonly saKid: string;
  readonly revocations: RevocationStore;
  /** Called after a new entry is on the list (the list goes to the sites, and from them to the nodes). */
  readonly onRevoked?: () => void;
  /** Caps on the list's live entries (the core defaults when absent). */
  readonly caps?: RevocationCaps;
}

/** Most entries one compaction batch (one atomic write) drops. */
export const COMPACTION_BATCH = 5000;

/** The `exp` (s) of the link of `chain` whose jti is `jti`, if it is there and readable. */
function expOfLink(chain: readonly string[], jti: string): number | undefined {
  for (const link of chain) {
    try {
      const claims = JSON.parse(Buffer.from(link.split('.')[1] ?? '', 'base64url').toString('utf8')) as { jti?: unknown; exp?: unknown };
      if (claims.jti === jti && Number.isSafeInteger(claims.exp)) return claims.exp as number;
    } catch {
      // Not a readable link: no expiry known from it.
    }
  }
  return undefined;
}

/** Slice credentials and revocations of one slice authority. */
export class SliceCredentials {
  private readonly issued: Table<CredentialRecord>;
  private readonly ledger: RevocationLedger;
  /** jti → the provider whose slice it is (who may revoke it, and what it delegated under it) and the slice. */
  private readonly owners = new Map<string, IssuedRoot>();
  /** jti → its expiry (s), for credentials this authority issued. */
  private readonly expiries = new Map<string, number>();

  constructor(private readonly deps: SliceCredentialsOptions) {
    this.issued = deps.store.table<CredentialRecord>(TABLES.credentials);
    this.ledger = new RevocationLedger({
      store: deps.store,
      revocations: deps.revocations,
      issuerKey: deps.saJwk,
      issuerUrn: deps.saUrn,
      metaTable: 'sa-revocation-meta',
      now: deps.now,
      log: deps.log,
      ...(deps.caps ? { caps: deps.caps } : {}),
    });
  }

  /** Loads who owns which issued credential. */
  async load(): Promise<void> {
    for await (const [k, v] of this.issued.entries()) {
      this.owners.set(v.jti, { providerUrn: k.split(' ')[0] as string, sliceUrn: v.sliceUrn });
      this.expiries.set(v.jti, Math.ceil(v.expiresAt / 1000));
    }
    // A list restored from an old store may hold many expired entries: they leave before the first
    // call, and who revoked the rest is counted now rather than in the first Revoke.
    await this.compact();
    await this.ledger.liveBy(this.deps.saUrn);
  }

  /**
   * Drops entries of expired credentials from the list (with who revoked them) in batches of at most
   * `batch`, each one atomic, until none is left. Returns how many left.
   */
  async compact(batch = COMPACTION_BATCH): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.ledger.compact(batch);
      total += n;
      if (n < batch) return total;
    }
  }

  /**
   * Drops up to `max` records of issued credentials that expired before `cutoffMs`, in one atomic
   * batch (retention.ts). A request id of a dropped record is new again: a retry issues a fresh
   * credential, no older one comes back. Returns how many were dropped.
   */
  async purgeIssued(cutoffMs: number, max: number): Promise<number> {
    const gone: [string, string][] = [];
    for await (const [k, v] of this.issued.entries()) {
      if (v.expiresAt < cutoffMs) gone.push([k, v.jti]);
      if (gone.length >= max) break;
    }
    if (!gone.length) return 0;
    const batch = this.deps.store.batch();
    for (const [k] of gone) batch.del(this.issued, k);
    await batch.write({ sync: true });
    for (const [, jti] of gone) {
      this.owners.delete(jti);
      this.expiries.delete(jti);
    }
    return gone.length;
  }

  /** Live entries on the list. */
  get liveEntries(): number {
    return this.ledger.size;
  }

  /** Whether a key is on this authority's list. */
  isKeyRevoked(thumbprint: string): boolean {
    return this.deps.revocations.listFor(this.deps.saKid)?.keys.has(thumbprint) ?? false;
  }

  /** The list's version. */
  get version(): number {
    return this.ledger.version;
  }

  /** IssueSliceCredential for a slice the caller owns (checked by the caller of this method). Idempotent on request_id. */
  async issue(caller: Caller, slice: SliceRecord, req: IssueSliceCredentialRequest): Promise<IssueSliceCredentialResponse> {
    const rid = requestId(req.requestId);
    const key = `${slice.providerUrn} ${caller.urn} ${rid}`;
    const asked = IssueSliceCredentialRequest.toJSON({ ...req, requestId: '' }) as Record<string, unknown>;
    // The same request id for a later slice of the same name is another request, never the old chain.
    const fingerprint = createHash('sha256')
      .update(canonicalJson(slice.incarnation !== undefined ? { ...asked, incarnation: slice.incarnation } : asked))
      .digest('base64url');
    const prior = await this.issued.get(key);
    if (prior) {
      if (prior.fingerprint !== fingerprint)
        throw new AlreadyExistsError(`request id ${rid} was already used for another IssueSliceCredential; use a new request id`, {
          rule: 'request_id',
        });
      return { chain: [...prior.chain], jti: prior.jti, expiresAt: new Date(prior.expiresAt) };
    }
    if (!req.holderCertificatePem)
      throw new InvalidArgumentError("holder_certificate_pem is required: the holder's X.509 certificate (PEM)", {
        field: 'holder_certificate_pem',
      });
    let holder;
    try {
      holder = await identityFromCertificate(parseCertificate(req.holderCertificatePem, 'holder_certificate_pem'));
    } catch (err) {
      throw new InvalidArgumentError(`holder_certificate_pem: ${(err as Error).message}`, { field: 'holder_certificate_pem' });
    }
    const privileges = req.privileges.length ? [...new Set(req.privileges)] : [...SLICE_PRIVILEGES];
    for (const p of privileges) {
      if (!isPrivilege(p)) throw new InvalidArgumentError(`unknown privilege ${JSON.stringify(p.slice(0, 40))}`, { field: 'privileges' });
      if (!p.startsWith('sliver.') && !p.startsWith('slice.'))
        throw new InvalidArgumentError(
          `privilege ${p} is not a slice privilege; a slice credential grants sliver.* and slice.* privileges`,
          { field: 'privileges' },
        );
    }
    const targets = req.targets.length ? [...new Set(req.targets)] : [slice.urn];
    for (const t of targets) {
      if (t !== slice.urn)
        throw new InvalidArgumentError(`target ${t.slice(0, 120)} is not the slice ${slice.urn}; a slice credential targets its slice`, {
          field: 'targets',
        });
    }
    if (!Number.isSafeInteger(req.maxDelegations) || req.maxDelegations > 7)
      throw new InvalidArgumentError('max_delegations must be 0 to 7 (a chain has at most 8 links)', { field: 'max_delegations' });
    if (!Number.isSafeInteger(req.ttlS) || req.ttlS < 0) throw new InvalidArgumentError('ttl_s must be 0 or more', { field: 'ttl_s' });
    const limits = limitsFromWire(req.limits);
    const now = this.deps.now();
    const until = req.ttlS ? Math.min(slice.expiresAt, now + req.ttlS * 1000) : slice.expiresAt;
    const ttlSeconds = Math.floor((until - now) / 1000);
    if (ttlSeconds <= 0)
      throw new FailedPreconditionError(`slice ${slice.urn} expires at ${new Date(slice.expiresAt).toISOString()}; renew it first`, {
        rule: 'expired',
      });
    const cred = await issueRoot({
      key: this.deps.saKey,
      issuer: this.deps.saUrn,
      subject: holder.urn,
      subjectKey: holder.jwk as Record<string, unknown>,
      targets,
      privileges,
      dlg: req.maxDelegations,
      limits,
      ttlSeconds,
      now: new Date(now),
      // Bound to this life of the slice: useless on a later slice of the same name.
      ...(slice.incarnation !== undefined ? { incarnation: slice.incarnation } : {}),
    });
    const rec: CredentialRecord = {
      fingerprint,
      chain: cred.chain,
      jti: cred.claims.jti,
      expiresAt: cred.claims.exp * 1000,
      sliceUrn: slice.urn,
    };
    await this.issued.put(key, rec, { sync: true });
    this.owners.set(rec.jti, { providerUrn: slice.providerUrn, sliceUrn: slice.urn });
    this.expiries.set(rec.jti, cred.claims.exp);
    this.deps.log.info(
      { slice: slice.urn, incarnation: slice.incarnation, holder: holder.urn, jti: rec.jti, privileges, dlg: req.maxDelegations },
      'slice credential issued',
    );
    return { chain: [...cred.chain], jti: rec.jti, expiresAt: new Date(rec.expiresAt) };
  }

  /**
   * Revoke: administrators anything; providers the credentials issued for their slices, and those they
   * delegated under them when `chain` (the call's credential metadata) is the member's whole chain.
   * A refusal changes nothing.
   */
  async revoke(caller: Caller, req: SliceAuthorityRevokeRequest, chain: readonly string[] = []): Promise<SliceAuthorityRevokeResponse> {
    const target = revocationTarget(req.jti, req.keyThumbprint);
    // The expiry read from a member's chain counts only once the chain is proven (checkMemberChain).
    let proven = false;
    if (!caller.admin && !(target.jti !== undefined && this.owners.get(target.jti)?.providerUrn === caller.urn)) {
      if (target.jti === undefined || chain.length === 0) {
        throw new PermissionDeniedError(
          `${caller.urn} may revoke only credentials issued for its own slices, or delegated under them with the member's whole chain in metadata fedlab-credential; administrators revoke anything else`,
          { rule: 'admin' },
        );
      }
      checkMemberChain({
        chain,
        jti: target.jti,
        callerUrn: caller.urn,
        saUrn: this.deps.saUrn,
        saJwk: this.deps.saJwk,
        issued: (jti) => this.owners.get(jti),
        now: new Date(this.deps.now()),
      });
      proven = true;
    }
    const reason = text('reason', req.reason, 200);
    const exp =
      target.jti !== undefined ? (this.expiries.get(target.jti) ?? (proven ? expOfLink(chain, target.jti) : undefined)) : undefined;
    try {
      const { entry, version } = await this.ledger.revoke(target, reason, caller.urn, {
        ...(exp !== undefined ? { exp } : {}),
        capRevoker: !caller.admin,
      });
      this.deps.onRevoked?.();
      return { entry: ledgerEntryToWire(entry), version };
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) throw err;
      const field = target.jti !== undefined ? 'jti' : 'key_thumbprint';
      throw new InvalidArgumentError(`${field}: ${err.message}`, { field });
    }
  }

  /** ListRevocations: entries in version order, optionally since a version. */
  async list(req: SliceAuthorityListRevocationsRequest): Promise<SliceAuthorityListRevocationsResponse> {
    return this.ledger.listPage(req);
  }
}
