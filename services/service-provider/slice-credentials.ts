/**
 * The provider's slice credentials (`SA → SP`), one per slice, asked of the
 * slice authority with IssueSliceCredential and kept in LevelDB. A credential
 * is used until less than a tenth of its life (or a minute) is left, then a
 * fresh one is asked for; a node that refuses it (UNAUTHENTICATED or
 * PERMISSION_DENIED) makes the provider forget it and ask again.
 *
 * A fresh credential cures a refusal about the credential (revoked, expired,
 * another life of the slice), not one about anything else: a node whose site
 * does not trust the slice authority's key refuses every credential it
 * issues, and a node answers for a sliver it no longer holds as for an
 * untrusted chain (so as not to tell whether it exists). So a refusal
 * forgets the credential at once only the first time; after that, not before
 * a back-off that doubles from a minute to an hour (and starts again after an
 * hour without a refusal). Without it, a step retried every few seconds had
 * the slice authority issue and store a new credential at each attempt, for
 * as long as the slice lived.
 */
import { parseCredential } from '../core/credentials/index.js';
import type { Logger } from '../core/log.js';
import type { Store, Table } from '../core/store/store.js';
import type { Clock } from '../core/clock.js';
import { TABLES, type SliceCredentialRecord } from './records.js';
import type { Remotes } from './remotes.js';
import { internalRequestId } from './validate.js';

/** What the provider asks for: what it and its members use on node managers. */
export const PROVIDER_SLICE_PRIVILEGES = ['sliver.exec', 'sliver.read', 'sliver.control', 'sliver.renew', 'slice.read'] as const;

/** Options of {@link SliceCredentials}. */
export interface SliceCredentialsOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  readonly remotes: Remotes;
  /** The provider's own certificate (the holder of its slice credentials). */
  readonly certificatePem: string;
  /** Lifetime asked for (s); 0: until the slice expires. */
  readonly ttlS: number;
  readonly deadlineMs: number;
}

/** The first pause between forgetting a slice's credential on refusals, and the longest (ms). */
export const REFUSAL_BACKOFF_MS = { first: 60_000, max: 3_600_000 } as const;

/** When a slice's credential was last forgotten on a refusal, and the pause before the next. */
interface RefusalState {
  at: number;
  pauseMs: number;
}

/** Slice credentials by slice URN. */
export class SliceCredentials {
  private readonly table: Table<SliceCredentialRecord>;
  private readonly inflight = new Map<string, Promise<SliceCredentialRecord>>();
  /** Slices whose credential a node refused lately (in memory: after a restart the first refusal forgets again). */
  private readonly refusals = new Map<string, RefusalState>();

  constructor(private readonly deps: SliceCredentialsOptions) {
    this.table = deps.store.table<SliceCredentialRecord>(TABLES.sliceCredentials);
  }

  /** A usable chain for a slice, asking the slice authority when there is none or it is running out. */
  async chainFor(sliceUrn: string, signal?: AbortSignal): Promise<readonly string[]> {
    return (await this.credentialFor(sliceUrn, signal)).chain;
  }

  /** The record of a usable credential (chain, jti, expiry). */
  async credentialFor(sliceUrn: string, signal?: AbortSignal): Promise<SliceCredentialRecord> {
    const now = this.deps.clock.now();
    const cur = await this.table.get(sliceUrn);
    if (cur) {
      const life = cur.expiresAt - cur.issuedAt;
      if (cur.expiresAt - now > Math.max(60_000, life / 10)) return cur;
    }
    let p = this.inflight.get(sliceUrn);
    if (!p) {
      p = this.issue(sliceUrn, signal).finally(() => this.inflight.delete(sliceUrn));
      this.inflight.set(sliceUrn, p);
    }
    return p;
  }

  private async issue(sliceUrn: string, signal?: AbortSignal): Promise<SliceCredentialRecord> {
    const res = await this.deps.remotes.sliceAuthority().issueSliceCredential(
      {
        requestId: internalRequestId('sp-cred'),
        sliceUrn,
        holderCertificatePem: this.deps.certificatePem,
        privileges: [...PROVIDER_SLICE_PRIVILEGES],
        targets: [],
        limits: undefined,
        ttlS: this.deps.ttlS,
        // One more level: the provider attenuates it for its members.
        maxDelegations: 1,
      },
      { deadlineMs: this.deps.deadlineMs, ...(signal ? { signal } : {}) },
    );
    if (res.chain.length === 0) throw new Error('the slice authority returned an empty chain');
    const leaf = parseCredential(res.chain[res.chain.length - 1] as string, res.chain.length - 1);
    const rec: SliceCredentialRecord = {
      sliceUrn,
      chain: res.chain,
      jti: res.jti || leaf.claims.jti,
      expiresAt: res.expiresAt?.getTime() ?? leaf.claims.exp * 1000,
      issuedAt: this.deps.clock.now(),
    };
    await this.table.put(sliceUrn, rec, { sync: true });
    this.deps.log.info({ slice: sliceUrn, jti: rec.jti, expiresAt: new Date(rec.expiresAt).toISOString() }, 'slice credential issued');
    return rec;
  }

  /** Forgets a slice's credential (the slice is gone). */
  async forget(sliceUrn: string): Promise<void> {
    this.refusals.delete(sliceUrn);
    if (sliceUrn) await this.table.del(sliceUrn, { sync: true });
  }

  /**
   * A node refused the slice's credential (UNAUTHENTICATED or PERMISSION_DENIED). Forgets it, so the next
   * use asks for a fresh one, unless it forgot one for a refusal less than the back-off ago (the pause then
   * doubles, up to REFUSAL_BACKOFF_MS.max). Returns whether it forgot.
   */
  async refused(sliceUrn: string): Promise<boolean> {
    if (!sliceUrn) return false;
    const now = this.deps.clock.now();
    const last = this.refusals.get(sliceUrn);
    if (last && now - last.at < last.pauseMs) return false;
    // Quiet for an hour past its pause: the next refusal is a new story, and starts the back-off again.
    const pauseMs =
      !last || now - last.at >= last.pauseMs + REFUSAL_BACKOFF_MS.max
        ? REFUSAL_BACKOFF_MS.first
        : Math.min(last.pauseMs * 2, REFUSAL_BACKOFF_MS.max);
    this.refusals.set(sliceUrn, { at: now, pauseMs });
    await this.table.del(sliceUrn, { sync: true });
    return true;
  }
}
