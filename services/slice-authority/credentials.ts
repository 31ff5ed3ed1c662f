/**
 * Slice credentials and the slice authority's revocation list.
 *
 * IssueSliceCredential signs a root `SA → holder` over one slice with the
 * authority's key (the key its sites' `MA → SA` chains were issued to, which
 * the aggregates hand to node managers in CreateSliver). A node manager trusts
 * that key for that slice only, so the holder can read, exec in, control and
 * renew the slice's slivers there directly; DeleteSliver stays with the node's
 * owner and MA. The provider may attenuate it for its members (`dlg`).
 *
 * Revoke and ListRevocations keep the authority's own list (services/core's
 * RevocationStore): administrators revoke anything; a provider revokes the
 * credentials issued for its own slices. A provider key on the list can no
 * longer use the authority (see Accounts).
 */
import { createHash, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../core/canonical-json.js';
import { issueRoot, isPrivilege, type Privilege, type PublicJwk, type RevocationEntry as CoreEntry, type RevocationStore } from '../core/credentials/index.js';
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, PermissionDeniedError } from '../core/errors.js';
import { identityFromCertificate, parseCertificate } from '../core/identity/certificate.js';
import type { Logger } from '../core/log.js';
import type { Store, Table } from '../core/store/store.js';
import type { ResourceLimits, RevocationEntry } from '../generated/fedlab/v1/common.js';
import {
  IssueSliceCredentialRequest,
  type IssueSliceCredentialResponse,
  type SliceAuthorityListRevocationsRequest,
  type SliceAuthorityListRevocationsResponse,
  type SliceAuthorityRevokeRequest,
  type SliceAuthorityRevokeResponse,
} from '../generated/fedlab/v1/slice_authority.js';
import type { Caller } from './accounts.js';
import { TABLES, type CredentialRecord, type SliceRecord } from './records.js';
import { pageSize, requestId, text } from './support.js';

/** What a slice credential grants when the request names no privileges. */
export const SLICE_PRIVILEGES: readonly Privilege[] = ['sliver.read', 'sliver.exec', 'sliver.control', 'sliver.renew', 'sliver.create', 'sliver.delete', 'slice.read', 'slice.renew', 'slice.delete', 'slice.create'];

interface MetaRecord {
  readonly revokedBy: string;
  readonly version: number;
}

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
}

function limitsOf(l: ResourceLimits | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  const put = (k: string, v: number | undefined): void => {
    if (v === undefined) return;
    if (!Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(`limits.${k} must be a whole number of 0 or more`, { field: `limits.${k}` });
    out[k] = v;
  };
  put('slivers', l?.slivers);
  put('cpu_millis', l?.cpuMillis);
  put('mem_mb', l?.memMb);
  put('disk_mb', l?.diskMb);
  put('ttl_s', l?.ttlS);
  return out;
}

/** Slice credentials and revocations of one slice authority. */
export class SliceCredentials {
  private readonly issued: Table<CredentialRecord>;
  private readonly meta: Table<MetaRecord>;
  /** jti → the provider whose slice it is (who may revoke it). */
  private readonly owners = new Map<string, string>();

  constructor(private readonly o: SliceCredentialsOptions) {
    this.issued = o.store.table<CredentialRecord>(TABLES.credentials);
    this.meta = o.store.table<MetaRecord>('sa-revocation-meta');
  }

  /** Loads who owns which issued credential. */
  async load(): Promise<void> {
    for await (const [k, v] of this.issued.entries()) this.owners.set(v.jti, k.split(' ')[0] as string);
  }

  /** Whether a key is on this authority's list. */
  isKeyRevoked(thumbprint: string): boolean {
    return this.o.revocations.listFor(this.o.saKid)?.keys.has(thumbprint) ?? false;
  }

  /** The list's version. */
  get version(): number {
    return this.o.revocations.list(this.o.saKid)?.version ?? 0;
  }

  /** IssueSliceCredential for a slice the caller owns (checked by the caller of this method). Idempotent on request_id. */
  async issue(caller: Caller, slice: SliceRecord, req: IssueSliceCredentialRequest): Promise<IssueSliceCredentialResponse> {
    const rid = requestId(req.requestId);
    const key = `${slice.providerUrn} ${caller.urn} ${rid}`;
    const fingerprint = createHash('sha256')
      .update(canonicalJson(IssueSliceCredentialRequest.toJSON({ ...req, requestId: '' }) as Record<string, unknown>))
      .digest('base64url');
    const prior = await this.issued.get(key);
    if (prior) {
      if (prior.fingerprint !== fingerprint) throw new AlreadyExistsError(`request id ${rid} was already used for another IssueSliceCredential; use a new request id`, { rule: 'request_id' });
      return { chain: [...prior.chain], jti: prior.jti, expiresAt: new Date(prior.expiresAt) };
    }
    if (!req.holderCertificatePem) throw new InvalidArgumentError("holder_certificate_pem is required: the holder's X.509 certificate (PEM)", { field: 'holder_certificate_pem' });
    let holder;
    try {
      holder = await identityFromCertificate(parseCertificate(req.holderCertificatePem, 'holder_certificate_pem'));
    } catch (err) {
      throw new InvalidArgumentError(`holder_certificate_pem: ${(err as Error).message}`, { field: 'holder_certificate_pem' });
    }
    const privileges = req.privileges.length ? [...new Set(req.privileges)] : [...SLICE_PRIVILEGES];
    for (const p of privileges) {
      if (!isPrivilege(p)) throw new InvalidArgumentError(`unknown privilege ${JSON.stringify(p.slice(0, 40))}`, { field: 'privileges' });
      if (!p.startsWith('sliver.') && !p.startsWith('slice.')) throw new InvalidArgumentError(`privilege ${p} is not a slice privilege; a slice credential grants sliver.* and slice.* privileges`, { field: 'privileges' });
    }
    const targets = req.targets.length ? [...new Set(req.targets)] : [slice.urn];
    for (const t of targets) {
      if (t !== slice.urn) throw new InvalidArgumentError(`target ${t.slice(0, 120)} is not the slice ${slice.urn}; a slice credential targets its slice`, { field: 'targets' });
    }
    if (!Number.isSafeInteger(req.maxDelegations) || req.maxDelegations > 7) throw new InvalidArgumentError('max_delegations must be 0 to 7 (a chain has at most 8 links)', { field: 'max_delegations' });
    if (!Number.isSafeInteger(req.ttlS) || req.ttlS < 0) throw new InvalidArgumentError('ttl_s must be 0 or more', { field: 'ttl_s' });
    const limits = limitsOf(req.limits);
    const now = this.o.now();
    const until = req.ttlS ? Math.min(slice.expiresAt, now + req.ttlS * 1000) : slice.expiresAt;
    const ttlSeconds = Math.floor((until - now) / 1000);
    if (ttlSeconds <= 0) throw new FailedPreconditionError(`slice ${slice.urn} expires at ${new Date(slice.expiresAt).toISOString()}; renew it first`, { rule: 'expired' });
    const cred = await issueRoot({
      key: this.o.saKey,
      issuer: this.o.saUrn,
      subject: holder.urn,
      subjectKey: holder.jwk as Record<string, unknown>,
      targets,
      privileges,
      dlg: req.maxDelegations,
      limits,
      ttlSeconds,
      now: new Date(now),
    });
    const rec: CredentialRecord = { fingerprint, chain: cred.chain, jti: cred.claims.jti, expiresAt: cred.claims.exp * 1000, sliceUrn: slice.urn };
    await this.issued.put(key, rec, { sync: true });
    this.owners.set(rec.jti, slice.providerUrn);
    this.o.log.info({ slice: slice.urn, holder: holder.urn, jti: rec.jti, privileges, dlg: req.maxDelegations }, 'slice credential issued');
    return { chain: [...cred.chain], jti: rec.jti, expiresAt: new Date(rec.expiresAt) };
  }

  /** Revoke: administrators anything; providers the credentials issued for their slices. */
  async revoke(caller: Caller, req: SliceAuthorityRevokeRequest): Promise<SliceAuthorityRevokeResponse> {
    const hasJti = req.jti !== '';
    const hasKid = req.keyThumbprint !== '';
    if (hasJti === hasKid) throw new InvalidArgumentError('give exactly one of jti and key_thumbprint', { field: 'jti' });
    if (!caller.admin && !(hasJti && this.owners.get(req.jti) === caller.urn)) {
      throw new PermissionDeniedError(`${caller.urn} may revoke only credentials issued for its own slices; administrators revoke anything else`, { rule: 'admin' });
    }
    const reason = text('reason', req.reason, 200);
    const time = Math.floor(this.o.now() / 1000);
    const item: CoreEntry = hasJti ? { jti: req.jti, reason, time } : { kid: req.keyThumbprint, reason, time };
    let list;
    try {
      list = await this.o.revocations.revoke(this.o.saJwk, item, this.o.saUrn);
    } catch (err) {
      throw new InvalidArgumentError(`${hasJti ? 'jti' : 'key_thumbprint'}: ${(err as Error).message}`, { field: hasJti ? 'jti' : 'key_thumbprint' });
    }
    const index = list.entries.findIndex((e) => (hasJti ? e.jti === req.jti : e.kid === req.keyThumbprint));
    const entry = list.entries[index] as CoreEntry;
    const metaKey = hasJti ? `jti:${req.jti}` : `kid:${req.keyThumbprint}`;
    let meta = await this.meta.get(metaKey);
    if (!meta) {
      meta = { revokedBy: caller.urn, version: index + 1 };
      await this.meta.put(metaKey, meta, { sync: true });
      this.o.log.info({ jti: entry.jti, kid: entry.kid, by: caller.urn, version: list.version }, 'revoked');
    }
    return { entry: this.toWire(entry, index + 1, meta), version: list.version };
  }

  /** ListRevocations: entries in version order, optionally since a version. */
  async list(req: SliceAuthorityListRevocationsRequest): Promise<SliceAuthorityListRevocationsResponse> {
    const size = pageSize(req.pageSize);
    if (!Number.isSafeInteger(req.sinceVersion) || req.sinceVersion < 0) throw new InvalidArgumentError('since_version must be 0 or more', { field: 'since_version' });
    let from = req.sinceVersion;
    if (req.pageToken) {
      const v = /^v([0-9]{1,15})$/.exec(Buffer.from(req.pageToken, 'base64url').toString());
      if (!v) throw new InvalidArgumentError('page_token is not one this server gave out; start again with an empty token', { field: 'page_token' });
      from = Math.max(from, Number(v[1]));
    }
    const list = this.o.revocations.list(this.o.saKid);
    const entries = list?.entries ?? [];
    const page = entries.slice(from, from + size);
    const out: RevocationEntry[] = [];
    for (const [i, e] of page.entries()) {
      const meta = await this.meta.get(e.jti !== undefined ? `jti:${e.jti}` : `kid:${e.kid}`);
      out.push(this.toWire(e, from + i + 1, meta));
    }
    const last = from + page.length;
    return { version: list?.version ?? 0, entries: out, nextPageToken: last < entries.length ? Buffer.from(`v${last}`).toString('base64url') : '' };
  }

  private toWire(e: CoreEntry, version: number, meta: MetaRecord | undefined): RevocationEntry {
    return { jti: e.jti ?? '', keyThumbprint: e.kid ?? '', reason: e.reason, revokedAt: new Date(e.time * 1000), revokedBy: meta?.revokedBy ?? this.o.saUrn, version };
  }
}
