/**
 * Hands this slice authority's signed revocation list to every site, which
 * relays it to the node managers holding its slices (they trust this
 * authority's key for those slices, so only its own list can take that trust
 * back there). A site is asked again, every retry interval, until it holds the
 * current version and says no node of it is still to be reached; at start-up
 * every site is asked once (the process does not remember what sites took).
 */
import type { KeyObject } from 'node:crypto';
import type { RevocationStore } from '../core/credentials/index.js';
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
  readonly log: Logger;
}

/** Pushes the revocation list to the sites until each has it everywhere. */
export class RevocationPush {
  /** The list version each site has taken with no node left to reach. */
  private readonly done = new Map<string, number>();
  private readonly failing = new Set<string>();
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(private readonly deps: RevocationPushOptions) {}

  /** The list's version (0 while nothing is revoked). */
  get version(): number {
    return this.deps.revocations.list(this.deps.saKid)?.version ?? 0;
  }

  /**
   * Sends the current list to every site that does not have it everywhere yet, sites in parallel;
   * a site whose call is still in flight is not called twice (a site that is down delays only
   * itself; the next push sends it the newest list). Returns the sites still behind. Never throws.
   */
  async push(): Promise<string[]> {
    const version = this.version;
    if (version === 0) return [];
    const behind = this.deps.sites.domains().filter((d) => (this.done.get(d) ?? 0) < version);
    await Promise.all(behind.map((d) => this.pushTo(d)));
    return this.deps.sites.domains().filter((d) => (this.done.get(d) ?? 0) < this.version);
  }

  private pushTo(domain: string): Promise<void> {
    const running = this.inFlight.get(domain);
    if (running) return running;
    const work = this.send(domain).finally(() => this.inFlight.delete(domain));
    this.inFlight.set(domain, work);
    return work;
  }

  private async send(domain: string): Promise<void> {
    const site = this.deps.sites.get(domain);
    if (!site) return;
    const version = this.version;
    const jws = this.deps.revocations.exportSigned(this.deps.saKey, this.deps.saUrn);
    try {
      const res = await site.client.updateRevocations({ signedList: jws }, { chain: site.chain, deadlineMs: this.deps.deadlineMs });
      if (res.nodesPending === 0) {
        this.done.set(domain, Math.max(this.done.get(domain) ?? 0, version));
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
        this.deps.log.warn({ site: domain, version, err: (err as Error).message }, 'revocation list not delivered to the site; retrying');
      this.failing.add(domain);
    }
  }
}
