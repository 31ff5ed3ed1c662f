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
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { identityOfField } from '../core/identity/certificate.js';
import { parseSshPublicKey } from '../core/identity/ssh-keys.js';
import { parseTarget, targetContains } from '../core/identity/urn.js';
import type { Logger } from '../core/log.js';
import type { Store, Table } from '../core/store/store.js';
import type {
  DelegateToMemberRequest,
  DelegateToMemberResponse,
  Member,
  AddMemberRequest,
  RemoveMemberResponse,
  RevokeMemberCredentialResponse,
  ListMembersRequest,
  ListMembersResponse,
} from '../generated/fedlab/v1/service_provider.js';
import type { ResourceLimits } from '../generated/fedlab/v1/common.js';
import type { Clock } from '../core/clock.js';
import { listMembers } from './member-list.js';
import { keysIntentKey, removeIntentKey, revokeIntentKey, type MemberIntents } from './member-intents.js';
import { TABLES, type DelegationRecord, type MemberIntentRecord, type MemberRecord, type MemberRequestRecord } from './records.js';
import { memberOf } from './member-list.js';
import type { SliceCredentials } from './slice-credentials.js';
import { requestId, text, urnField } from '../core/validate.js';

/** Options of {@link Members}. */
export interface MembersOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  readonly credentials: SliceCredentials;
  /** The intents that carry member changes to the slice authority (and the lock of member changes). */
  readonly intents: MemberIntents;
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

  /** ListMembers (see member-list.ts). */
  list(req: ListMembersRequest): Promise<ListMembersResponse> {
    return listMembers(this.deps.intents, req);
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
      if (cur) return memberOf(cur);
    }
    const known = await this.table.get(req.memberUrn);
    if (known?.removedAt !== undefined && !known.removal) {
      throw new FailedPreconditionError(`${req.memberUrn} is being removed (RemoveMember is not finished); add it again once it is`, {
        rule: 'removing',
      });
    }
    // A removed member added again is a new member.
    const existing = known?.removedAt !== undefined ? undefined : known;
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
    return memberOf(rec);
  }

  /**
   * DelegateToMember: `SA → SP → member` over a slice (or some of its slivers), and the member's SSH
   * key on the slice when one is given. Idempotent on request id: a retry after a failure to reach
   * the slice authority carries the recorded key on and answers with the same chain.
   */
  async delegate(req: DelegateToMemberRequest): Promise<DelegateToMemberResponse> {
    const rid = requestId(req.requestId);
    urnField('member_urn', req.memberUrn, 'user');
    urnField('slice_urn', req.sliceUrn, 'slice');
    const sshKey = req.sshPublicKey ? parseSshPublicKey(req.sshPublicKey, 'ssh_public_key').line : undefined;
    const fingerprint = hash({ ...req, requestId: undefined });
    const key = `delegate ${rid}`;
    return this.deps.intents.exclusive(req.memberUrn, async () => {
      const seen = await this.requests.get(key);
      if (seen) {
        if (seen.fingerprint !== fingerprint)
          throw new AlreadyExistsError(`request id ${rid} was already used for another delegation; use a new request id`, {
            rule: 'request_id',
          });
        const r = seen.result as DelegationResult;
        if (r.keyIntent) await this.deps.intents.runLocked(r.keyIntent);
        return { chain: r.chain, jti: r.jti, expiresAt: new Date(r.expiresAt) };
      }
      const member = await this.table.get(req.memberUrn);
      if (!member || member.removedAt !== undefined)
        throw new NotFoundError(`${req.memberUrn} is not a member of this provider; add it with AddMember first`);
      const { res, parentJti } = await this.issue(req, member);
      const keyIntent = sshKey ? keysIntentKey(member.urn, req.sliceUrn) : undefined;
      const result: DelegationResult = { ...res, ...(keyIntent ? { keyIntent } : {}) };
      const delegation: DelegationRecord = {
        memberUrn: member.urn,
        sliceUrn: req.sliceUrn,
        jti: res.jti,
        parentJti,
        expiresAt: res.expiresAt,
        requestKey: key,
        ...(sshKey ? { sshKey, keyState: 'pending' as const } : {}),
      };
      // The delegation, its request and the key's intent in one batch: the key is never lost.
      const batch = this.deps.store
        .batch()
        .put(this.requests, key, { fingerprint, result })
        .put(this.deps.intents.delegations, `${member.urn} ${res.jti}`, delegation);
      if (sshKey && keyIntent) {
        const intent: MemberIntentRecord = {
          kind: 'keys',
          memberUrn: member.urn,
          sliceUrn: req.sliceUrn,
          createdAt: this.deps.clock.now(),
        };
        batch.put(this.deps.intents.intents, keyIntent, intent);
        const keys = member.sshKeys ?? [];
        if (!keys.includes(sshKey)) batch.put(this.table, member.urn, { ...member, sshKeys: [...keys, sshKey] });
      }
      await batch.write({ sync: true });
      if (keyIntent) await this.deps.intents.runLocked(keyIntent);
      return { chain: res.chain, jti: res.jti, expiresAt: new Date(res.expiresAt) };
    });
  }

  /**
   * RemoveMember: revokes every credential delegated to the member and takes its SSH keys off every
   * slice they were added to (recorded first, then carried out; see member-intents.ts). Again on a
   * removed member answers what was undone; an unknown member is NOT_FOUND.
   */
  async remove(memberUrn: string): Promise<RemoveMemberResponse> {
    urnField('member_urn', memberUrn, 'user');
    return this.deps.intents.exclusive(memberUrn, async () => {
      const member = await this.table.get(memberUrn);
      if (!member) throw new NotFoundError(`${memberUrn} is not a member of this provider`);
      if (member.removedAt === undefined) {
        const now = this.deps.clock.now();
        const delegations = await this.deps.intents.delegations.values({ prefix: `${memberUrn} ` });
        const slices = [...new Set(delegations.filter((d) => d.sshKey).map((d) => d.sliceUrn))].sort();
        const intent: MemberIntentRecord = {
          kind: 'remove',
          memberUrn,
          createdAt: now,
          // An expired credential is refused everywhere already; one revoked alone is on the list already.
          revoke: delegations
            .filter((d) => d.expiresAt > now && d.revocation?.state !== 'done')
            .map((d) => ({ jti: d.jti, parentJti: d.parentJti, sliceUrn: d.sliceUrn })),
          slices,
          revoked: [],
          cleared: [],
        };
        const batch = this.deps.store
          .batch()
          .put(this.table, memberUrn, { ...member, removedAt: now })
          .put(this.deps.intents.intents, removeIntentKey(memberUrn), intent);
        // Keys still on their way are superseded: the removal takes the member off those slices too.
        for (const d of delegations) {
          batch.del(this.deps.intents.intents, keysIntentKey(memberUrn, d.sliceUrn));
          batch.del(this.deps.intents.intents, revokeIntentKey(memberUrn, d.jti));
        }
        await batch.write({ sync: true });
        this.deps.log.info({ member: memberUrn, credentials: intent.revoke.length, slices: slices.length }, 'removing member');
      }
      await this.deps.intents.runLocked(removeIntentKey(memberUrn));
      const done = await this.table.get(memberUrn);
      return { revokedJtis: [...(done?.removal?.revokedJtis ?? [])], sliceUrns: [...(done?.removal?.sliceUrns ?? [])] };
    });
  }

  /**
   * RevokeMemberCredential: one credential delegated to the member onto the slice authority's list
   * (the nodes then refuse it), and its SSH key off the slice unless another live credential of the
   * member there carries it (recorded first, then carried out; see member-intents.ts). Again on a
   * revoked one answers `already_revoked`; an unknown member or jti is NOT_FOUND.
   */
  async revokeCredential(memberUrn: string, jti: string): Promise<RevokeMemberCredentialResponse> {
    urnField('member_urn', memberUrn, 'user');
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > 128 || !/^[\x21-\x7e]+$/.test(jti))
      throw new InvalidArgumentError('jti is required: the credential to revoke (fedlab member ls lists them)', { field: 'jti' });
    return this.deps.intents.exclusive(memberUrn, async () => {
      const member = await this.table.get(memberUrn);
      if (!member) throw new NotFoundError(`${memberUrn} is not a member of this provider`);
      if (member.removedAt !== undefined) {
        if (member.removal?.revokedJtis.includes(jti)) return { jti, alreadyRevoked: true, sliceUrns: [] };
        if (!member.removal)
          throw new FailedPreconditionError(`${memberUrn} is being removed (RemoveMember is not finished); it revokes its credentials`, {
            rule: 'removing',
          });
        throw new NotFoundError(`${memberUrn} was removed from this provider and holds no live credential ${jti}`);
      }
      const dkey = `${memberUrn} ${jti}`;
      const d = await this.deps.intents.delegations.get(dkey);
      if (!d) throw new NotFoundError(`${memberUrn} holds no credential ${jti} from this provider (fedlab member ls lists them)`);
      if (d.revocation?.state === 'done') return { jti, alreadyRevoked: true, sliceUrns: [...d.revocation.sliceUrns] };
      const key = revokeIntentKey(memberUrn, jti);
      if (!d.revocation) {
        const now = this.deps.clock.now();
        const intent: MemberIntentRecord = { kind: 'revoke', memberUrn, jti, sliceUrn: d.sliceUrn, createdAt: now, revoked: false };
        await this.deps.store
          .batch()
          .put(this.deps.intents.delegations, dkey, { ...d, revocation: { state: 'pending', at: now, sliceUrns: [] } })
          .put(this.deps.intents.intents, key, intent)
          .write({ sync: true });
        this.deps.log.info({ member: memberUrn, jti, slice: d.sliceUrn }, 'revoking member credential');
      }
      // A revocation begun by an earlier call (its answer lost) is finished by this one.
      await this.deps.intents.runLocked(key);
      const done = await this.deps.intents.delegations.get(dkey);
      return { jti, alreadyRevoked: false, sliceUrns: [...(done?.revocation?.sliceUrns ?? [])] };
    });
  }

  /** Issues the member's link under the provider's slice credential (checks of the request that need no lock done by the caller). */
  private async issue(req: DelegateToMemberRequest, member: MemberRecord): Promise<{ res: IssuedResult; parentJti: string }> {
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
    this.deps.log.info(
      { member: member.urn, slice: req.sliceUrn, jti: issued.claims.jti, privileges: issued.claims.priv },
      'credential delegated to member',
    );
    return { res: { chain: [...issued.chain], jti: issued.claims.jti, expiresAt: issued.claims.exp * 1000 }, parentJti: parent.jti };
  }
}

/** A delegation as its request record keeps it. */
interface IssuedResult {
  readonly chain: string[];
  readonly jti: string;
  readonly expiresAt: number;
}

/** With the key intent's key when a key came with it. */
interface DelegationResult extends IssuedResult {
  readonly keyIntent?: string;
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
