/**
 * The site's own revocation list on its nodes. A node takes the list of its
 * own MA (signed with the key the MA holds the owner's chain with), so what
 * the site revokes — a delegation the MA signed under the owner's chain —
 * stops working on the nodes too. Each copy is signed with `iat` now and
 * `next_update` a configured interval later (`revocation.next_update_s`); a
 * node gets the list at once when it grows (Revoke), when it first is UP, and a
 * fresh copy once half of that interval has passed since its last: a node that
 * stops getting fresh copies refuses the chains the MA signed links of (fail
 * closed), while the MA's own calls (the owner's chain, which the MA does not
 * sign) keep working. Delivery is remembered in memory only: after a restart
 * every node is sent the list once. A node that could not be reached is tried
 * again after a pause (a minute at most, a quarter of `next_update_s` at
 * least often), so an UP node that does not answer costs little.
 *
 * No call outgrows a node's receive limit (core revocation-plan.ts): a small
 * list travels whole; a large one as signed deltas from the version the node
 * took last, or as a snapshot in parts (deltas from 0) when that version is
 * not known here or the node skipped a delta (it did not hold its base).
 */
import type { KeyObject } from 'node:crypto';
import { validityAt, type RevocationSettings, type RevocationStore } from '../core/credentials/index.js';
import { groupForCalls, planUpdates, type UpdatePlan } from '../core/credentials/revocation-plan.js';
import type { Logger } from '../core/log.js';
import type { NodeClients } from './node-clients.js';
import type { NodeRegistry } from './node-registry.js';

/** Options of {@link OwnRevocationPush}. */
export interface OwnRevocationPushOptions {
  readonly revocations: RevocationStore;
  readonly maKey: KeyObject;
  readonly maUrn: string;
  readonly maKid: string;
  readonly registry: Pick<NodeRegistry, 'all'>;
  readonly nodes: Pick<NodeClients, 'fanOut'>;
  readonly settings: RevocationSettings;
  /** Milliseconds since the epoch (the MA's clock). */
  readonly now: () => number;
  readonly log: Logger;
}

interface Delivered {
  readonly version: number;
  readonly signedAt: number;
}

/** Pushes the MA's own signed list to every UP node that lacks the current version or a fresh copy. */
export class OwnRevocationPush {
  private readonly done = new Map<string, Delivered>();
  /** Nodes that could not be reached, and when to try them again (ms). */
  private readonly failing = new Map<string, number>();
  private running: Promise<number> | undefined;
  /** Nodes that came UP again since a run chose its targets: what that run delivers does not count for them. */
  private readonly upAgain = new Set<string>();
  /** The one run that follows the current one, shared by everyone who asked meanwhile. */
  private next: Promise<number> | undefined;

  constructor(private readonly o: OwnRevocationPushOptions) {}

  private get version(): number {
    return this.o.revocations.list(this.o.maKid)?.version ?? 0;
  }

  private get retryMs(): number {
    return Math.min(60_000, (this.o.settings.nextUpdateS * 1000) / 4);
  }

  private behind(nodeUrn: string, now: number): boolean {
    if ((this.failing.get(nodeUrn) ?? 0) > now) return false;
    const d = this.done.get(nodeUrn);
    return !d || d.version < this.version || now - d.signedAt >= (this.o.settings.nextUpdateS * 1000) / 2;
  }

  /**
   * Sends a freshly signed copy to the UP nodes that are behind; returns how many took it. A push
   * asked for while one runs waits for it and then runs again (a revocation made meanwhile is sent);
   * every push asked for during one run shares the one run after it. A run looks at every node, so
   * thousands of nodes coming UP at once (an MA restart) cost two runs, not one each. Never throws.
   */
  push(): Promise<number> {
    if (this.next) return this.next;
    if (!this.running) return this.start();
    this.next = this.running.then(
      () => this.followUp(),
      () => this.followUp(),
    );
    return this.next;
  }

  private followUp(): Promise<number> {
    this.next = undefined;
    return this.start();
  }

  private start(): Promise<number> {
    const run = this.send().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  /** A node came (back) UP: it is sent a fresh copy now, whatever it took before (never throws). */
  nodeUp(nodeUrn: string): Promise<number> {
    this.done.delete(nodeUrn);
    this.failing.delete(nodeUrn);
    // A run in flight may deliver to it from before this UP (it restarted meanwhile): the next run sends again.
    if (this.running) this.upAgain.add(nodeUrn);
    return this.push();
  }

  private async send(): Promise<number> {
    const now = this.o.now();
    this.upAgain.clear();
    const targets = this.o.registry
      .all()
      .filter((n) => n.up && this.behind(n.record.urn, now))
      .map((n) => n.record.urn);
    if (targets.length === 0) return 0;
    const version = this.version;
    const validity = validityAt(now, this.o.settings);
    // One plan per version held (most nodes hold the same one).
    const plans = new Map<number | undefined, UpdatePlan>();
    const planFor = (from: number | undefined): UpdatePlan => {
      let p = plans.get(from);
      if (!p) {
        p = planUpdates({
          revocations: this.o.revocations,
          privateKey: this.o.maKey,
          iss: this.o.maUrn,
          ...(from !== undefined ? { from } : {}),
          validity,
        });
        plans.set(from, p);
      }
      return p;
    };
    const sent = await this.o.nodes.fanOut(
      targets,
      (n) => n,
      async (c, opts, nodeUrn) => {
        let plan = planFor(this.done.get(nodeUrn)?.version);
        let skipped = 0;
        for (const signedLists of groupForCalls(plan.messages)) skipped += (await c.updateRevocations({ signedLists }, opts)).skipped;
        if (skipped > 0 && plan.kind === 'delta') {
          // The node did not hold the delta's base: a snapshot brings it up.
          plan = planFor(undefined);
          for (const signedLists of groupForCalls(plan.messages)) await c.updateRevocations({ signedLists }, opts);
        }
        return plan.version;
      },
    );
    let ok = 0;
    const newlyMissed: string[] = [];
    for (const r of sent) {
      if (r.ok) {
        ok++;
        if (!this.upAgain.has(r.nodeUrn)) this.done.set(r.nodeUrn, { version: r.value, signedAt: now });
        this.failing.delete(r.nodeUrn);
      } else {
        // A node UP again since this run chose it failed as its old self (restarted meanwhile): the next run tries it.
        if (this.upAgain.has(r.nodeUrn)) continue;
        // Said once per run of failures: a node that is unreachable would otherwise fill the log.
        if (!this.failing.has(r.nodeUrn)) newlyMissed.push(r.nodeUrn);
        this.failing.set(r.nodeUrn, now + this.retryMs);
      }
    }
    if (newlyMissed.length)
      this.o.log.warn(
        { version, missed: newlyMissed.slice(0, 20), count: newlyMissed.length },
        "the site's revocation list did not reach some nodes; retrying",
      );
    return ok;
  }
}
