/**
 * The provider's members (users) and their credentials. AddMember records a
 * member and its certificate (the key that will hold its credentials).
 * DelegateToMember attenuates the provider's slice credential `SA → SP` to
 * `SA → SP → member` with the credentials library, which refuses anything
 * wider than the parent (a privilege the provider does not hold, a target
 * outside the slice, a longer life, more delegation) naming the rule; the
 * member then uses the chain directly against node managers.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../core/canonical-json.js';
import { delegate, type Limits } from '../core/credentials/index.js';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { identityOfField } from '../core/identity/certificate.js';
import { parseTarget, targetContains } from '../core/identity/urn.js';
import type { Logger } from '../core/log.js';
import type { Store, Table } from '../core/store/store.js';
import type {
  DelegateToMemberRequest,
  DelegateToMemberResponse,
  Member,
  AddMemberRequest,
} from '../generated/fedlab/v1/service_provider.js';
import type { ResourceLimits } from '../generated/fedlab/v1/common.js';
import type { Clock } from '../core/clock.js';
import { TABLES, type MemberRecord, type MemberRequestRecord } from './records.js';
import type { SliceCredentials } from './slice-credentials.js';
import { requestId, text, urnField } from '../core/validate.js';

/** Options of {@link Members}. */
export interface MembersOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  readonly credentials: SliceCredentials;
  /** The provider's key (its TLS key): it signs the `SP → member` links. */
  readonly key: KeyObject;
  readonly providerUrn: string;
  readonly defaultPrivileges: readonly string[];
  readonly defaultTtlS: number;
  readonly maxTtlS: number;
  /** Whether the provider may hand out credentials for a slice (one of its deployments' slices). */
  readonly ownsSlice: (sliceUrn: string) => boolean;
}

/** Members and their delegations. */
export class Members {
  private readonly table: Table<MemberRecord>;
  private readonly requests: Table<MemberRequestRecord>;

  constructor(private readonly deps: MembersOptions) {
    this.table = deps.store.table<MemberRecord>(TABLES.members);
    this.requests = deps.store.table<MemberRequestRecord>(TABLES.memberRequests);
  }

  /** AddMember. Idempotent on request id, and on the member URN with the same certificate. */
  async add(req: AddMemberRequest): Promise<Member> {
    const rid = requestId(req.requestId);
    urnField('member_urn', req.memberUrn, 'user');
    const displayName = text('display_name', req.displayName, 128);
    if (typeof req.certificatePem !== 'string' || req.certificatePem.length === 0 || req.certificatePem.length > 16_384) {
      throw new InvalidArgumentError("certificate_pem is required: the member's PEM certificate (fedlab certs issue)", {
        field: 'certificate_pem',
      });
    }
    const id = await identityOfField(req.certificatePem, 'certificate_pem');
    if (id.urn !== req.memberUrn)
      throw new InvalidArgumentError(`certificate_pem names ${id.urn}, not ${req.memberUrn}`, { field: 'certificate_pem' });
    const fingerprint = hash({ m: req.memberUrn, c: req.certificatePem, d: displayName });
    const key = `add ${rid}`;
    const seen = await this.requests.get(key);
    if (seen) {
      if (seen.fingerprint !== fingerprint)
        throw new AlreadyExistsError(`request id ${rid} was already used for another member; use a new request id`, { rule: 'request_id' });
      const cur = await this.table.get(req.memberUrn);
      if (cur) return toWire(cur);
    }
    const existing = await this.table.get(req.memberUrn);
    if (existing && existing.certificatePem !== req.certificatePem) {
      throw new AlreadyExistsError(`member ${req.memberUrn} is already registered with another certificate`, { field: 'member_urn' });
    }
    const rec: MemberRecord = existing
      ? { ...existing, displayName }
      : {
          urn: req.memberUrn,
          certificatePem: req.certificatePem,
          keyThumbprint: id.thumbprint,
          displayName,
          addedAt: this.deps.clock.now(),
        };
    await this.deps.store
      .batch()
      .put(this.table, rec.urn, rec)
      .put(this.requests, key, { fingerprint, result: rec.urn })
      .write({ sync: true });
    if (!existing) this.deps.log.info({ member: rec.urn }, 'member added');
    return toWire(rec);
  }

  /** DelegateToMember: `SA → SP → member` over a slice (or some of its slivers). Idempotent on request id. */
  async delegate(req: DelegateToMemberRequest): Promise<DelegateToMemberResponse> {
    const rid = requestId(req.requestId);
    urnField('member_urn', req.memberUrn, 'user');
    urnField('slice_urn', req.sliceUrn, 'slice');
    const fingerprint = hash({ ...req, requestId: undefined });
    const key = `delegate ${rid}`;
    const seen = await this.requests.get(key);
    if (seen) {
      if (seen.fingerprint !== fingerprint)
        throw new AlreadyExistsError(`request id ${rid} was already used for another delegation; use a new request id`, {
          rule: 'request_id',
        });
      const r = seen.result as { chain: string[]; jti: string; expiresAt: number };
      return { chain: r.chain, jti: r.jti, expiresAt: new Date(r.expiresAt) };
    }
    const member = await this.table.get(req.memberUrn);
    if (!member) throw new NotFoundError(`${req.memberUrn} is not a member of this provider; add it with AddMember first`);
    if (!this.deps.ownsSlice(req.sliceUrn)) throw new NotFoundError(`slice ${req.sliceUrn} is not one of this provider's deployments`);
    if (!Number.isSafeInteger(req.ttlS) || req.ttlS < 0 || req.ttlS > this.deps.maxTtlS) {
      throw new InvalidArgumentError(`ttl_s must be between 0 (the default, ${this.deps.defaultTtlS}) and ${this.deps.maxTtlS}`, {
        field: 'ttl_s',
      });
    }
    const targets = req.targets.length > 0 ? req.targets : [req.sliceUrn];
    for (const t of targets) {
      try {
        if (!targetContains(req.sliceUrn, parseTarget(t))) throw new Error('outside');
      } catch {
        throw new InvalidArgumentError(`target ${t} is not the slice ${req.sliceUrn}`, { field: 'targets' });
      }
    }
    const parent = await this.deps.credentials.credentialFor(req.sliceUrn);
    const now = this.deps.clock.now();
    const leftS = Math.floor((parent.expiresAt - now) / 1000);
    // 0: the default lifetime, never past the provider's own credential; an explicit one is checked by the library.
    const ttl = req.ttlS || Math.min(this.deps.defaultTtlS, leftS);
    const memberKey = createPublicKey(member.certificatePem);
    const issued = await delegate(parent.chain, {
      key: this.deps.key,
      subject: member.urn,
      subjectKey: memberKey,
      privileges: req.privileges.length > 0 ? req.privileges : this.deps.defaultPrivileges,
      targets,
      dlg: req.maxDelegations,
      limits: toLimits(req.limits),
      ttlSeconds: ttl,
      now: new Date(now),
    });
    const res = { chain: [...issued.chain], jti: issued.claims.jti, expiresAt: issued.claims.exp * 1000 };
    await this.requests.put(key, { fingerprint, result: res }, { sync: true });
    this.deps.log.info(
      { member: member.urn, slice: req.sliceUrn, jti: res.jti, privileges: issued.claims.priv },
      'credential delegated to member',
    );
    return { chain: res.chain, jti: res.jti, expiresAt: new Date(res.expiresAt) };
  }
}

function hash(v: unknown): string {
  return createHash('sha256')
    .update(canonicalJson(JSON.parse(JSON.stringify(v)) as unknown))
    .digest('base64url');
}

function toLimits(l: ResourceLimits | undefined): Limits | undefined {
  if (!l) return undefined;
  const out: Record<string, number> = {};
  if (l.slivers !== undefined) out.slivers = l.slivers;
  if (l.cpuMillis !== undefined) out.cpu_millis = l.cpuMillis;
  if (l.memMb !== undefined) out.mem_mb = l.memMb;
  if (l.diskMb !== undefined) out.disk_mb = l.diskMb;
  if (l.ttlS !== undefined) out.ttl_s = l.ttlS;
  return out;
}

function toWire(rec: MemberRecord): Member {
  return {
    urn: rec.urn,
    certificatePem: rec.certificatePem,
    keyThumbprint: rec.keyThumbprint,
    displayName: rec.displayName,
    addedAt: new Date(rec.addedAt),
  };
}
