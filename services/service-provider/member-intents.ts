/**
 * What the provider owes its slice authority on account of its members, carried out until done.
 *
 * A member's SSH key reaches a slice through the slice authority's UpdateSliceUsers; a removed
 * member's credentials are revoked there (Revoke) and its keys taken off every slice. Each such
 * change is an intent written in the same LevelDB batch as what calls for it (the delegation, the
 * removal), run at once by the call that made it, and — when the slice authority cannot be reached —
 * again on a capped back-off, also after a restart, so it is never lost. Work on one member runs
 * one at a time (a keyed mutex), so the last change sent is always the member's current keys.
 *
 * Revocation: the provider revokes exactly the member's own credentials, each with the member's
 * whole chain as proof in the call's credential metadata (the slice authority lets a provider revoke
 * what it delegated under its own slice credentials). The provider's credential above them, and so
 * every other member's chain under it, stays. A credential that has expired is refused everywhere
 * already and is not revoked.
 *
 * One credential (RevokeMemberCredential) is revoked the same way, through a `revoke` intent: once the
 * slice authority has it, the member's keys on the slice are made the keys of its live credentials
 * there (not revoked, not expired) — so the revoked credential's key leaves the slice unless another
 * live one carries it. A revocation the slice authority refuses for good is undone (the credential stays live)
 * and the member's keys on the slice are synced again (a sync meanwhile left the pending credential's key out).
 */
import { createHash } from 'node:crypto';
import { status as Status } from '@grpc/grpc-js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { KeyedMutex } from '../core/mutex.js';
import { errorForCode, plainOutcome } from '../core/rpc/outcome.js';
import type { Store, Table } from '../core/store/store.js';
import { SliceState } from '../generated/fedlab/v1/slice_authority.js';
import { TABLES, type DelegationRecord, type MemberIntentRecord, type MemberRecord, type MemberRequestRecord } from './records.js';
import type { Remotes } from './remotes.js';
import { sliceAtAuthority } from './slice-at-authority.js';

/** Options of {@link MemberIntents}. */
export interface MemberIntentsOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  readonly remotes: Remotes;
  /** Deadline of UpdateSliceUsers (it hands the list on to the sites) and Revoke (ms). */
  readonly deadlineMs: number;
  /** First retry of an intent that failed (ms); doubles up to `maxRetryMs`. */
  readonly retryMs: number;
  readonly maxRetryMs: number;
}

/** Codes after which the same call may well succeed later. */
const PASSING = new Set<number>([
  Status.UNAVAILABLE,
  Status.DEADLINE_EXCEEDED,
  Status.ABORTED,
  Status.RESOURCE_EXHAUSTED,
  Status.CANCELLED,
  Status.UNKNOWN,
  Status.INTERNAL,
]);

/** The intent key of a member's keys on a slice. */
export function keysIntentKey(memberUrn: string, sliceUrn: string): string {
  return `keys ${memberUrn} ${sliceUrn}`;
}

/** The intent key of the revocation of one member credential. */
export function revokeIntentKey(memberUrn: string, jti: string): string {
  return `revoke ${memberUrn} ${jti}`;
}

/** The intent key of a member's removal. */
export function removeIntentKey(memberUrn: string): string {
  return `remove ${memberUrn}`;
}

/**
 * The member's keys on a slice: those its live credentials there carry (not revoked, not expired).
 * A key carried only by revoked or expired credentials leaves the slice at the member's next change.
 */
function liveKeys(delegations: readonly DelegationRecord[], sliceUrn: string, now: number): string[] {
  const live = delegations.filter((d) => d.sliceUrn === sliceUrn && d.sshKey && !d.revocation && d.expiresAt > now);
  return [...new Set(live.map((d) => d.sshKey as string))];
}

function digest(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v)).digest('base64url');
}

/** The member intents and the one lock of member changes. */
export class MemberIntents {
  readonly intents: Table<MemberIntentRecord>;
  readonly members: Table<MemberRecord>;
  readonly delegations: Table<DelegationRecord>;
  readonly requests: Table<MemberRequestRecord>;
  private readonly lock = new KeyedMutex();
  private readonly backoff = new Map<string, { next: number; wait: number }>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private stopped = true;
  /** Aborted by stop(): a call to the slice authority in flight ends (its intent stays for the next start). */
  private readonly abort = new AbortController();
  private sweeping: Promise<void> | undefined;

  constructor(private readonly deps: MemberIntentsOptions) {
    this.intents = deps.store.table<MemberIntentRecord>(TABLES.memberIntents);
    this.members = deps.store.table<MemberRecord>(TABLES.members);
    this.delegations = deps.store.table<DelegationRecord>(TABLES.delegations);
    this.requests = deps.store.table<MemberRequestRecord>(TABLES.memberRequests);
  }

  /** Runs `fn` alone among the changes of one member. */
  exclusive<T>(memberUrn: string, fn: () => Promise<T>): Promise<T> {
    return this.lock.run(memberUrn, fn);
  }

  /** Starts retrying what a previous run left pending. */
  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops the retries (a running one finishes). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.sweeping;
  }

  /**
   * Carries out one intent now (the member's lock must be held by the caller). Resolves when it is
   * done (or there is nothing left to do); throws a typed error when it is not, the intent kept for
   * the retries when the failure may pass.
   */
  async runLocked(key: string): Promise<void> {
    const intent = await this.intents.get(key);
    if (!intent) return;
    try {
      if (intent.kind === 'keys') await this.syncKeys(key, intent);
      else if (intent.kind === 'revoke') await this.revokeOne(key, intent);
      else await this.removeMember(key, intent);
      this.backoff.delete(key);
    } catch (err) {
      const current = await this.intents.get(key);
      if (current) {
        const { reason } = plainOutcome(err);
        await this.intents.put(key, { ...current, lastError: reason }, { sync: true });
        const prev = this.backoff.get(key)?.wait ?? 0;
        const wait = Math.min(this.deps.maxRetryMs, prev ? prev * 2 : this.deps.retryMs);
        this.backoff.set(key, { wait, next: this.deps.clock.now() + wait });
        this.schedule(wait);
      }
      throw err;
    }
  }

  /** Makes the member's user entry on the slice hold exactly its keys there. */
  private async syncKeys(key: string, intent: Extract<MemberIntentRecord, { kind: 'keys' }>): Promise<void> {
    const member = await this.members.get(intent.memberUrn);
    if (!member || member.removedAt !== undefined) {
      // Removed meanwhile: the removal takes the member off the slice.
      await this.intents.del(key, { sync: true });
      return;
    }
    const all = await this.delegations.values({ prefix: `${intent.memberUrn} ` });
    const mine = all.filter((d) => d.sliceUrn === intent.sliceUrn && d.sshKey && !d.revocation);
    const keys = liveKeys(all, intent.sliceUrn, this.deps.clock.now());
    try {
      await this.sendKeys(member, intent.sliceUrn, keys);
    } catch (err) {
      const { code, reason } = plainOutcome(err);
      if (PASSING.has(code)) {
        throw errorForCode(
          Status.UNAVAILABLE,
          `the slice authority did not take ${member.urn}'s SSH key for ${intent.sliceUrn} (${reason}); it is recorded and sent again until the slice authority has it: call again with the same request_id`,
        );
      }
      // Refused for good: the keys that were waiting are forgotten with their delegations, whose chains were never handed out.
      const batch = this.deps.store.batch().del(this.intents, key);
      for (const d of mine.filter((x) => x.keyState === 'pending')) {
        batch.del(this.delegations, `${d.memberUrn} ${d.jti}`).del(this.requests, d.requestKey);
      }
      await batch.write({ sync: true });
      this.deps.log.warn({ member: member.urn, slice: intent.sliceUrn, code, reason }, 'slice authority refused a member key');
      throw errorForCode(code, `the slice authority refused ${member.urn}'s SSH key for ${intent.sliceUrn}: ${reason}`);
    }
    const batch = this.deps.store.batch().del(this.intents, key);
    for (const d of mine.filter((x) => x.keyState === 'pending'))
      batch.put(this.delegations, `${d.memberUrn} ${d.jti}`, { ...d, keyState: 'added' });
    await batch.write({ sync: true });
    this.deps.log.info({ member: member.urn, slice: intent.sliceUrn, keys: keys.length }, "member's SSH keys are at the slice authority");
  }

  /** Makes the member's user entry on a slice hold exactly `keys` (none: the member is taken off the slice). */
  private async sendKeys(member: MemberRecord, sliceUrn: string, keys: readonly string[]): Promise<void> {
    const requestId = `sp-keys.${digest([member.urn, member.addedAt, sliceUrn, keys])}`;
    const change = keys.length > 0 ? { add: [{ urn: member.urn, sshKeys: [...keys] }], remove: [] } : { add: [], remove: [member.urn] };
    await this.deps.remotes.sliceAuthority().updateSliceUsers({ requestId, sliceUrn, ...change }, this.callOptions());
  }

  /**
   * RevokeMemberCredential's work: the credential onto the slice authority's list, then its SSH key off
   * the slice unless another live credential of the member there carries it. Refused for good before
   * the slice authority has it: undone (the credential was never revoked).
   */
  private async revokeOne(key: string, intent: Extract<MemberIntentRecord, { kind: 'revoke' }>): Promise<void> {
    const dkey = `${intent.memberUrn} ${intent.jti}`;
    const member = await this.members.get(intent.memberUrn);
    const d = await this.delegations.get(dkey);
    if (!member || member.removedAt !== undefined || !d) {
      // Removed meanwhile: the removal revokes it.
      await this.intents.del(key, { sync: true });
      return;
    }
    let cur = intent;
    if (!cur.revoked) {
      try {
        await this.revoke(intent.memberUrn, { jti: intent.jti, sliceUrn: intent.sliceUrn }, 'revoked by its provider');
      } catch (err) {
        const { code, reason } = plainOutcome(err);
        if (PASSING.has(code)) {
          throw errorForCode(
            Status.UNAVAILABLE,
            `revoking ${intent.memberUrn}'s credential ${intent.jti}: the slice authority answered ${reason}; the revocation is recorded and carried on until it is done: call RevokeMemberCredential again to see it finished`,
          );
        }
        const { revocation: _undone, ...live } = d;
        const undo = this.deps.store.batch().del(this.intents, key).put(this.delegations, dkey, live);
        // A keys sync meanwhile left the pending credential's key off the slice: the member's keys are synced again.
        const keysKey = keysIntentKey(intent.memberUrn, intent.sliceUrn);
        if (d.sshKey) {
          const sync: MemberIntentRecord = {
            kind: 'keys',
            memberUrn: intent.memberUrn,
            sliceUrn: intent.sliceUrn,
            createdAt: this.deps.clock.now(),
          };
          undo.put(this.intents, keysKey, sync);
        }
        await undo.write({ sync: true });
        this.deps.log.warn({ member: intent.memberUrn, jti: intent.jti, code, reason }, 'slice authority refused a member revocation');
        // Now if it can (else it is retried): the refusal is the answer either way.
        if (d.sshKey) await this.runLocked(keysKey).catch(() => undefined);
        throw errorForCode(code, `the slice authority refused to revoke ${intent.memberUrn}'s credential ${intent.jti}: ${reason}`);
      }
      cur = { ...cur, revoked: true };
      await this.intents.put(key, cur, { sync: true });
    }
    const cleared: string[] = [];
    if (d.sshKey) {
      const now = this.deps.clock.now();
      // d is marked revoked (pending) already: these are the keys of the member's other live credentials there.
      const keys = liveKeys(await this.delegations.values({ prefix: `${intent.memberUrn} ` }), intent.sliceUrn, now);
      if (!keys.includes(d.sshKey)) {
        try {
          await this.sendKeys(member, intent.sliceUrn, keys);
          cleared.push(intent.sliceUrn);
        } catch (err) {
          if (!(await this.sliceGone(intent.sliceUrn, err)))
            throw this.failure(
              err,
              `taking ${intent.memberUrn}'s SSH key of credential ${intent.jti} off slice ${intent.sliceUrn}`,
              'RevokeMemberCredential',
            );
        }
      }
    }
    const revocation = { state: 'done' as const, at: d.revocation?.at ?? this.deps.clock.now(), sliceUrns: cleared };
    await this.deps.store
      .batch()
      .del(this.intents, key)
      .put(this.delegations, dkey, { ...d, revocation })
      .write({ sync: true });
    this.deps.log.info({ member: intent.memberUrn, jti: intent.jti, slices: cleared }, 'member credential revoked');
  }

  /** RemoveMember's work: revoke each credential, take the member off each slice, then record the result. */
  private async removeMember(key: string, intent: Extract<MemberIntentRecord, { kind: 'remove' }>): Promise<void> {
    let cur = intent;
    const sa = this.deps.remotes.sliceAuthority();
    const opts = this.callOptions();
    for (const r of intent.revoke) {
      if (cur.revoked.includes(r.jti)) continue;
      try {
        if (!(await this.revoke(intent.memberUrn, r))) continue;
      } catch (err) {
        throw this.failure(err, `revoking ${intent.memberUrn}'s credential ${r.jti} on ${r.sliceUrn}`);
      }
      cur = { ...cur, revoked: [...cur.revoked, r.jti] };
      await this.intents.put(key, cur, { sync: true });
    }
    const member = await this.members.get(intent.memberUrn);
    for (const slice of intent.slices) {
      if (cur.cleared.includes(slice)) continue;
      const requestId = `sp-rm.${digest([intent.memberUrn, member?.addedAt ?? 0, slice])}`;
      try {
        await sa.updateSliceUsers({ requestId, sliceUrn: slice, add: [], remove: [intent.memberUrn] }, opts);
      } catch (err) {
        if (!(await this.sliceGone(slice, err))) throw this.failure(err, `taking ${intent.memberUrn} off slice ${slice}`);
      }
      cur = { ...cur, cleared: [...cur.cleared, slice] };
      await this.intents.put(key, cur, { sync: true });
    }
    const batch = this.deps.store.batch().del(this.intents, key);
    if (member) {
      batch.put(this.members, member.urn, {
        ...member,
        removal: { revokedJtis: cur.revoked, sliceUrns: cur.cleared, finishedAt: this.deps.clock.now() },
      });
    }
    for await (const [k] of this.delegations.entries({ prefix: `${intent.memberUrn} ` })) batch.del(this.delegations, k);
    await batch.write({ sync: true });
    this.deps.log.info({ member: intent.memberUrn, revoked: cur.revoked.length, slices: cur.cleared.length }, 'member removed');
  }

  /**
   * Revokes one member credential at the slice authority, the member's chain as proof (the call's
   * error as it came). False when there is nothing to revoke: it has expired meanwhile.
   */
  private async revoke(memberUrn: string, r: { jti: string; sliceUrn: string }, why = 'removed by its provider'): Promise<boolean> {
    const d = await this.delegations.get(`${memberUrn} ${r.jti}`);
    if (d && d.expiresAt <= this.deps.clock.now()) {
      this.deps.log.info({ member: memberUrn, jti: r.jti }, 'member credential expired before its revocation; nothing to revoke');
      return false;
    }
    const asked = d ? await this.requests.get(d.requestKey) : undefined;
    const chain = (asked?.result as { chain?: readonly string[] } | undefined)?.chain ?? [];
    await this.deps.remotes
      .sliceAuthority()
      .revoke({ jti: r.jti, keyThumbprint: '', reason: `member ${memberUrn} ${why}` }, { ...this.callOptions(), chain });
    return true;
  }

  /** Options of every call to the slice authority. */
  private callOptions(): { deadlineMs: number; signal: AbortSignal } {
    return { deadlineMs: this.deps.deadlineMs, signal: this.abort.signal };
  }

  /** Whether a refused UpdateSliceUsers means the slice is gone (then its users are gone too). */
  private async sliceGone(slice: string, err: unknown): Promise<boolean> {
    const { code } = plainOutcome(err);
    if (code === Status.NOT_FOUND) return true;
    if (code !== Status.FAILED_PRECONDITION) return false;
    const s = await sliceAtAuthority(this.deps.remotes, slice, this.callOptions());
    return s === 'gone' || s?.state === SliceState.SLICE_STATE_DELETED || s?.state === SliceState.SLICE_STATE_EXPIRED;
  }

  private failure(err: unknown, what: string, call: 'RemoveMember' | 'RevokeMemberCredential' = 'RemoveMember'): Error {
    const { code, reason } = plainOutcome(err);
    const work = call === 'RemoveMember' ? 'removal' : 'revocation';
    const again = `the ${work} is recorded and carried on until it is done: call ${call} again to see it finished`;
    return errorForCode(PASSING.has(code) ? Status.UNAVAILABLE : code, `${what}: the slice authority answered ${reason}; ${again}`);
  }

  /** Sweeps in `ms` unless a sweep is due sooner already. */
  private schedule(ms: number): void {
    if (this.stopped) return;
    const at = this.deps.clock.now() + ms;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // One sweep at a time: a sweep due while one runs follows it.
      const run: Promise<void> = (this.sweeping ?? Promise.resolve())
        .then(() => this.sweep())
        .finally(() => {
          if (this.sweeping === run) this.sweeping = undefined;
        });
      this.sweeping = run;
    }, ms);
    this.timer.unref();
  }

  /** Runs every pending intent whose back-off is over, one at a time; failures reschedule themselves. */
  private async sweep(): Promise<void> {
    let soonest = Infinity;
    try {
      for await (const [key, intent] of this.intents.entries()) {
        if (this.stopped) return;
        const b = this.backoff.get(key);
        const now = this.deps.clock.now();
        if (b && b.next > now) {
          soonest = Math.min(soonest, b.next - now);
          continue;
        }
        await this.exclusive(intent.memberUrn, () => this.runLocked(key)).catch((err: unknown) => {
          this.deps.log.warn({ intent: key, reason: plainOutcome(err).reason }, 'member intent not done yet');
        });
      }
    } catch (err) {
      this.deps.log.warn({ reason: plainOutcome(err).reason }, 'member intents: sweep failed');
      soonest = this.deps.retryMs;
    }
    if (soonest !== Infinity) this.schedule(soonest);
  }
}
