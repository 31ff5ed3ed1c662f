/**
 * The meeting point of a CreateSlice's sites when the slice has stitched
 * links: each site's part, once its Allocate answered, hands in its stitch
 * points and waits until every site with a stitched end has done the same;
 * it then gets the peer sites' points of its own links and provisions with
 * them. A site that fails before handing its points in (or answers without
 * one) fails every site waiting: ABORTED naming the link and the endpoint,
 * so that all or nothing rolls them all back. No site waits longer than its
 * own budget: every part ends by handing in or failing, within its site's
 * deadline.
 */
import { AbortedError, FailedPreconditionError } from '../../core/errors.js';
import { ResourceRequest, type StitchEnd, type StitchPoint } from '../../generated/fedlab/v1/common.js';
import type { SiteRecord } from '../records.js';

/** The stitch ends a site's part asks for (its recorded request's). */
export function stitchEndsOf(sr: SiteRecord): StitchEnd[] {
  return ResourceRequest.fromJSON(sr.request).stitches?.ends ?? [];
}

/** One CreateSlice's exchange of stitch points between its sites. */
export class StitchExchange {
  private readonly ends = new Map<string, StitchEnd[]>();
  private readonly points = new Map<string, StitchPoint[]>();
  private failure: Error | undefined;
  private readonly waiting: (() => void)[] = [];

  constructor(sites: readonly SiteRecord[]) {
    for (const s of sites) {
      const e = stitchEndsOf(s);
      if (e.length) this.ends.set(s.site, e);
    }
  }

  /** Whether the slice has stitched links at all. */
  get active(): boolean {
    return this.ends.size > 0;
  }

  /** Whether `site` has a stitched end (and so must hand in its points). */
  has(site: string): boolean {
    return this.ends.has(site);
  }

  /**
   * Hands in `site`'s points from its Allocate answer; resolves with the peer sites' points of its links once every
   * site has handed in, or rejects when one failed.
   */
  async exchange(site: string, given: readonly StitchPoint[]): Promise<StitchPoint[]> {
    const mine = this.ends.get(site) ?? [];
    for (const e of mine) {
      const p = given.find((x) => x.link === e.link && x.clientId === e.clientId);
      if (!p || !p.underlayAddress || p.vni !== e.vni) {
        const err = new FailedPreconditionError(
          `stitched link ${e.link} (endpoint ${e.clientId}): site ${site} allocated without a usable stitch point (${p ? (p.underlayAddress ? `VNI ${p.vni}, not ${e.vni}` : 'no underlay address') : 'none given'}); the site may not take stitched links`,
          { rule: 'stitch', site, link: e.link, endpoint: e.clientId },
        );
        this.fail(site, err.message);
        throw err;
      }
    }
    this.points.set(site, [...given]);
    this.wake();
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (this.failure || [...this.ends.keys()].every((s) => this.points.has(s))) resolve();
        else this.waiting.push(check);
      };
      check();
    });
    if (this.failure) throw this.failure;
    const out: StitchPoint[] = [];
    for (const e of mine) {
      const p = (this.points.get(e.peerSite) ?? []).find((x) => x.link === e.link && x.clientId === e.peerClientId);
      if (p) out.push(p);
    }
    return out;
  }

  /** Says that `site`'s part failed before handing in its points: every site waiting fails, naming a link of `site`. */
  fail(site: string, why: string): void {
    if (this.failure || this.points.has(site) || !this.ends.has(site)) return;
    const e = (this.ends.get(site) as StitchEnd[])[0] as StitchEnd;
    this.failure = new AbortedError(
      `stitched link ${e.link}: its end at site ${site} (endpoint ${e.clientId}) could not be allocated (${why}); nothing is provisioned here, the slice is rolled back`,
      { rule: 'stitch', site, link: e.link, endpoint: e.clientId },
    );
    this.wake();
  }

  private wake(): void {
    const w = this.waiting.splice(0);
    for (const f of w) f();
  }
}
