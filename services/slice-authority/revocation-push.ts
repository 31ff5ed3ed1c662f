/**
 * Hands this slice authority's signed revocation list to every site, which
 * relays it to the node managers holding its slices (they trust this
 * authority's key for those slices, so only its own list can take that trust
 * back there). A site is asked again, every retry interval, until it holds the
 * current version and says no node of it is still to be reached; at start-up
 * every site is asked once (the process does not remember what sites took).
 *
 * Every copy sent is signed with `iat` now and `next_update` a configured
 * interval later (`revocation.next_update_s`), and a site is sent a fresh copy
 * once half of that interval has passed since the copy it took, new entries or
 * not: nodes that stop getting fresh copies refuse this authority's chains
 * (fail closed), so a live authority must keep them fresh. The empty list
 * (version 0) is published too, so that a node holds a list from the start.
 *
 * No message outgrows a server's receive limit (core revocation-plan.ts): a
 * small list travels whole; a large one as signed deltas from the version the
 * site holds (one call each), or as a snapshot in parts when the site is new
 * to this process, did not take a delta (its answer names an older version),
 * or has been sent many deltas since its last snapshot (the site keeps them
 * all to hand on to nodes that come later, so a snapshot now and then keeps
 * that short).
 */
import type { KeyObject } from 'node:crypto';
import { validityAt, type RevocationSettings, type RevocationStore } from '../core/credentials/index.js';
import { planUpdates, type UpdatePlan } from '../core/credentials/revocation-plan.js';
import type { Logger } from '../core/log.js';
import type { Sites } from './sites.js';

/** Options of {@link RevocationPush}. */
export interface RevocationPushOptions {
  readonly sites: Sites;
  readonly revocations: RevocationStore;
  readonly saKey: KeyObject;
  readonly saUrn: string;
  readonly saKid: string;
  /** Budget of one site's call (ms). */
  readonly deadlineMs: number;
  /** How long a signed copy holds (`next_update_s`). */
  readonly settings: RevocationSettings;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  readonly log: Logger;
}

/** What a site took: the version and when that copy was signed (ms). */
interface Delivered {
  readonly version: number;
  readonly signedAt: number;
}

/** The version a site holds and how many deltas it was sent since its last snapshot. */
interface Held {
  readonly version: number;
  readonly deltas: number;
}

/** Deltas a site is sent before it is sent a snapshot again. */
export const MAX_DELTAS_SINCE_SNAPSHOT = 32;

/** Pushes the revocation list to the sites until each has it everywhere. */
export class RevocationPush {
  /** What each site has taken with no node left to reach. */
  private readonly done = new Map<string, Delivered>();
  /** The version each site said it holds (in memory: after a restart every site gets a snapshot). */
  private readonly held = new Map<string, Held>();
  private readonly failing = new Set<string>();
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(private readonly deps: RevocationPushOptions) {}

  /** The list's version (0 while nothing is revoked). */
  get version(): number {
    return this.deps.revocations.list(this.deps.saKid)?.version ?? 0;
  }

  /** Whether a site lacks the current version everywhere, or its copy is half-way to its next_update. */
  private behind(domain: string): boolean {
    const d = this.done.get(domain);
    if (!d || d.version < this.version) return true;
    return this.deps.now() - d.signedAt >= (this.deps.settings.nextUpdateS * 1000) / 2;
  }

  /**
   * Sends a freshly signed copy of the list to every site that does not have the current version
   * everywhere yet or whose copy is due for re-publication, sites in parallel; a site whose call is
   * still in flight is not called twice (a site that is down delays only itself; the next push sends
   * it the newest list). Returns the sites still behind. Never throws.
   */
  async push(): Promise<string[]> {
    const behind = this.deps.sites.domains().filter((d) => this.behind(d));
    await Promise.all(behind.map((d) => this.pushTo(d)));
    return this.deps.sites.domains().filter((d) => this.behind(d));
  }

  private pushTo(domain: string): Promise<void> {
    const running = this.inFlight.get(domain);
    if (running) return running;
    const work = this.send(domain).finally(() => this.inFlight.delete(domain));
    this.inFlight.set(domain, work);
    return work;
  }

  private plan(domain: string, signedAt: number, snapshot: boolean): UpdatePlan {
    const h = this.held.get(domain);
    const from = !snapshot && h && h.deltas < MAX_DELTAS_SINCE_SNAPSHOT ? h.version : undefined;
    return planUpdates({
      revocations: this.deps.revocations,
      privateKey: this.deps.saKey,
      iss: this.deps.saUrn,
      ...(from !== undefined ? { from } : {}),
      validity: validityAt(signedAt, this.deps.settings),
    });
  }

  private async send(domain: string): Promise<void> {
    const site = this.deps.sites.get(domain);
    if (!site) return;
    const signedAt = this.deps.now();
    let plan = this.plan(domain, signedAt, false);
    try {
      const call = (signedList: string) =>
        site.client.updateRevocations({ signedList }, { chain: site.chain, deadlineMs: this.deps.deadlineMs });
      let res = { version: 0, nodesUpdated: 0, nodesPending: 0 };
      for (const m of plan.messages) res = await call(m);
      if (res.version < plan.version && plan.kind === 'delta') {
        // The site did not hold the delta's base (it lost its copy, or missed one): a snapshot instead.
        this.deps.log.info(
          { site: domain, held: res.version, version: plan.version },
          'site behind the revocation deltas; sending a snapshot',
        );
        plan = this.plan(domain, signedAt, true);
        for (const m of plan.messages) res = await call(m);
      }
      if (res.version < plan.version) {
        this.held.delete(domain);
        throw new Error(`the site holds version ${res.version} of the list after version ${plan.version} was sent`);
      }
      const before = this.held.get(domain);
      const deltas = plan.kind === 'delta' ? (before?.deltas ?? 0) + (plan.version > (before?.version ?? 0) ? plan.messages.length : 0) : 0;
      this.held.set(domain, { version: plan.version, deltas });
      const version = plan.version;
      if (res.nodesPending === 0) {
        const prev = this.done.get(domain);
        if (!prev || prev.version < version || (prev.version === version && prev.signedAt < signedAt))
          this.done.set(domain, { version, signedAt });
        if (this.failing.delete(domain)) this.deps.log.info({ site: domain, version }, 'revocation list delivered to the site again');
      } else {
        this.deps.log.info(
          { site: domain, version, pending: res.nodesPending },
          'revocation list at the site; some of its nodes are still to get it',
        );
      }
    } catch (err) {
      // Said once per run of failures: a site that is down would otherwise fill the log.
      if (!this.failing.has(domain))
        this.deps.log.warn(
          { site: domain, version: plan.version, err: (err as Error).message },
          'revocation list not delivered to the site; retrying',
        );
      this.failing.add(domain);
    }
  }
}
