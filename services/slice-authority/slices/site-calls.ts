/**
 * The calls the slice authority makes to one site for one slice: its part of
 * a CreateSlice (Allocate, Provision, start), a Delete, a Renew and a Status,
 * each within its deadline and showing the site's `MA → SA` chain, each
 * answering with that site's outcome instead of throwing. The steps of one
 * part share one budget: each call's deadline is what is left of it, so no
 * call outlives the SA's wait for it. A site's passing UNAVAILABLE (with a
 * retry hint) is asked again within that budget (site-retry.ts).
 */
import { status as Status } from '@grpc/grpc-js';
import { FailedPreconditionError } from '../../core/errors.js';
import { isServiceError } from '../../core/rpc/client.js';
import { OperationalAction } from '../../generated/fedlab/v1/aggregate.js';
import { ResourceRequest, SiteStyle, type Sliver, type SliverResult } from '../../generated/fedlab/v1/common.js';
import type { SiteResult, Slice } from '../../generated/fedlab/v1/slice_authority.js';
import { usersOf, type IntentRecord, type SiteRecord, type SliceRecord } from '../records.js';
import { certainlyChangedNothing, OK, type Outcome } from '../../core/rpc/outcome.js';
import { siteOutcome } from '../site-outcome.js';
import type { Site } from '../sites.js';
import type { SliceBookState } from './book-state.js';
import { failedOf, holdsSlivers, isStarted, liveSlivers, sliverLine } from './sliver-status.js';
import { budget, withRetries } from './site-retry.js';
import type { StitchExchange } from './stitch-exchange.js';

/** What one site did for a CreateSlice. */
export interface SiteCreate {
  readonly outcome: Outcome;
  readonly slivers: readonly Sliver[];
  readonly manifest: string;
  readonly expiresAt?: number;
  /** Whether the site may hold something of the slice (so a rollback must Delete there). */
  readonly mayHold: boolean;
  readonly style: number;
}

/** What one site did for a Delete or Renew. */
export interface SiteCall {
  readonly site: string;
  readonly outcome: Outcome;
  readonly results: readonly SliverResult[];
}

/** What one site did for a Renew, with the expiry it was asked for when it renewed something. */
export interface SiteRenewal extends SiteCall {
  readonly granted?: number;
}

/** A slice and the per-site outcome of a call on it. */
export interface SliceWithResults {
  readonly slice: Slice;
  readonly results: SiteResult[];
}

/** The wire form of one site's part of a call. */
export function siteResult(book: SliceBookState, c: SiteCall): SiteResult {
  const site = book.deps.sites.get(c.site);
  return {
    site: c.site,
    aggregateUrn: site?.maUrn ?? '',
    status: { code: c.outcome.code, reason: c.outcome.reason },
    slivers: [...c.results],
  };
}

/**
 * One site's part of a CreateSlice: Allocate, Provision, start, within the site's deadline. With stitched links
 * (`stitch`), the site's stitch points are exchanged with the other sites' between Allocate and Provision.
 */
export async function createAt(
  book: SliceBookState,
  rec: SliceRecord,
  intent: IntentRecord,
  index: number,
  sr: SiteRecord,
  stitch?: StitchExchange,
): Promise<SiteCreate> {
  const { sites, limits } = book.deps;
  const site = sites.get(sr.site) as Site;
  const within = budget(book.now + limits.site_deadline_ms, () => book.now, limits.site_deadline_ms);
  const bestEffort = rec.mode === 'best_effort';
  let mayHold = false;
  let style: number = SiteStyle.SITE_STYLE_UNSPECIFIED;
  let slivers: Sliver[] = [];
  try {
    const version = await sites.version(site, within.left('GetVersion'));
    style = version.style;
    const latest = sites.latest(site, version, rec.createdAt);
    const expiresAt = Math.min(rec.expiresAt, latest.at);
    if (expiresAt <= book.now + 1000) {
      throw new FailedPreconditionError(
        `nothing can be created there: ${latest.rule} ends at ${new Date(latest.at).toISOString()}; ask the site's admin for a new MA → SA chain`,
      );
    }
    mayHold = true;
    let alloc;
    try {
      alloc = await withRetries('Allocate', within, (deadlineMs) =>
        site.client.allocate(
          {
            users: usersOf(rec),
            requestId: `${intent.id}.${index}`,
            sliceUrn: rec.urn,
            providerUrn: rec.providerUrn,
            request: ResourceRequest.fromJSON(sr.request),
            expiresAt: new Date(expiresAt),
            sliceIncarnation: rec.incarnation,
          },
          { chain: site.chain, deadlineMs },
        ),
      );
    } catch (err) {
      if (certainlyChangedNothing(err)) mayHold = false;
      throw err;
    }
    slivers = alloc.slivers;
    for (const s of alloc.slivers) book.publish(rec, { site: sr.site, nodeUrn: s.nodeUrn, sliverUrn: s.urn, message: 'allocated' });
    // Stitched links: this site's points for the peers, the peers' points for this site (waits for every stitched site's Allocate).
    const peers = stitch?.has(sr.site) ? await stitch.exchange(sr.site, alloc.stitchPoints?.points ?? []) : [];
    if (peers.length)
      book.publish(rec, {
        site: sr.site,
        message: `stitch points exchanged: ${peers.map((p) => `${p.link} → ${p.site} ${p.underlayAddress} VNI ${p.vni}`).join('; ')}`,
      });
    // Provision starts the slivers too (one node call each instead of two); a start the site did not do is asked for below.
    const prov = await withRetries('Provision', within, (deadlineMs) =>
      site.client.provision(
        {
          urns: [rec.urn],
          bestEffort,
          expiresAt: new Date(expiresAt),
          start: rec.start,
          ...(peers.length ? { peerStitchPoints: { points: peers } } : {}),
        },
        { chain: site.chain, deadlineMs },
      ),
    );
    const results = new Map(prov.results.map((r) => [r.sliverUrn, r]));
    for (const r of prov.results) {
      book.publish(rec, {
        site: sr.site,
        nodeUrn: r.nodeUrn,
        sliverUrn: r.sliverUrn,
        status: r.status ?? OK,
        message: r.status?.code ? `provision failed: ${r.status.reason}` : 'provisioned',
      });
      if (rec.start && !r.status?.code && isStarted(r.sliver))
        book.publish(rec, { site: sr.site, nodeUrn: r.nodeUrn, sliverUrn: r.sliverUrn, status: OK, message: 'started' });
    }
    if (rec.start) {
      const ok = prov.results.filter((r) => !r.status?.code && !isStarted(r.sliver)).map((r) => r.sliverUrn);
      if (ok.length) {
        const act = await withRetries('start', within, (deadlineMs) =>
          site.client.performOperationalAction(
            {
              users: [],
              urns: ok.length === prov.results.length ? [rec.urn] : ok,
              action: OperationalAction.OPERATIONAL_ACTION_START,
              bestEffort,
            },
            { chain: site.chain, deadlineMs },
          ),
        );
        for (const r of act.results) {
          results.set(r.sliverUrn, r);
          book.publish(rec, {
            site: sr.site,
            nodeUrn: r.nodeUrn,
            sliverUrn: r.sliverUrn,
            status: r.status ?? OK,
            message: r.status?.code ? `start failed: ${r.status.reason}` : 'started',
          });
        }
      }
    }
    const all = [...results.values()];
    const bad = failedOf(all);
    slivers = all.map((r) => ({
      ...(r.sliver as Sliver),
      urn: r.sliverUrn,
      nodeUrn: r.nodeUrn || r.sliver?.nodeUrn || '',
      error: r.status?.code ? r.status.reason : (r.sliver?.error ?? ''),
    }));
    const outcome: Outcome = bad.length
      ? {
          code: bad[0]?.status?.code ?? Status.UNKNOWN,
          reason: `site ${sr.site}: ${bad.length} of ${all.length} slivers failed: ${bad.map(sliverLine).join('; ')}`,
        }
      : OK;
    const expiries = slivers.filter((s) => !s.error && s.expiresAt).map((s) => (s.expiresAt as Date).getTime());
    book.publish(rec, {
      site: sr.site,
      status: outcome,
      message: bad.length ? outcome.reason : `site ${sr.site}: ${all.length} slivers ${rec.start ? 'started' : 'provisioned'}`,
    });
    return {
      outcome,
      slivers,
      manifest: prov.manifestDocument || alloc.manifestDocument,
      expiresAt: expiries.length ? Math.min(...expiries) : expiresAt,
      mayHold,
      style,
    };
  } catch (err) {
    const outcome = siteOutcome(err, sr.site);
    // The other stitched sites stop waiting for this one's points (a no-op once it handed them in).
    stitch?.fail(sr.site, outcome.reason);
    book.publish(rec, { site: sr.site, status: outcome, message: outcome.reason });
    return { outcome, slivers: slivers.map((s) => ({ ...s, error: outcome.reason })), manifest: '', mayHold, style };
  }
}

/** Delete at one site (the whole slice, or some slivers), within the site's deadline; OK only when every sliver is gone. */
export async function deleteAt(book: SliceBookState, sliceUrn: string, domain: string, urns: readonly string[]): Promise<SiteCall> {
  const site = book.deps.sites.get(domain);
  if (!site)
    return {
      site: domain,
      outcome: { code: Status.FAILED_PRECONDITION, reason: `site ${domain} is no longer configured here; its slivers expire on their own` },
      results: [],
    };
  const { site_deadline_ms: deadlineMs } = book.deps.limits;
  try {
    const res = await withRetries(
      'Delete',
      budget(book.now + deadlineMs, () => book.now, deadlineMs),
      (ms) => site.client.delete({ urns: [...urns], bestEffort: true }, { chain: site.chain, deadlineMs: ms }),
    );
    const bad = failedOf(res.results);
    const outcome: Outcome = bad.length
      ? {
          code: bad[0]?.status?.code ?? Status.UNKNOWN,
          reason: `site ${domain}: ${bad.length} slivers not deleted yet: ${bad.map(sliverLine).join('; ')}`,
        }
      : OK;
    return { site: domain, outcome, results: res.results };
  } catch (err) {
    // A slice the site no longer knows is deleted there.
    if (isServiceError(err, Status.NOT_FOUND) && urns.length === 1 && urns[0] === sliceUrn)
      return { site: domain, outcome: OK, results: [] };
    return { site: domain, outcome: siteOutcome(err, domain), results: [] };
  }
}

/**
 * Renew at one site: the expiry asked for, capped by `maxAt` (this authority's maximum), the site's
 * maximum and its chain's expiry and ttl. A site with no live sliver keeps its outcome.
 */
export async function renewAt(
  book: SliceBookState,
  rec: SliceRecord,
  s: SiteRecord,
  at: number,
  maxAt: number,
  bestEffort: boolean,
): Promise<SiteRenewal> {
  const { sites, limits } = book.deps;
  if (liveSlivers(s).length === 0) return { site: s.site, outcome: s.code ? { code: s.code, reason: s.reason } : OK, results: [] };
  const site = sites.get(s.site);
  if (!site)
    return {
      site: s.site,
      outcome: { code: Status.FAILED_PRECONDITION, reason: `site ${s.site} is no longer configured here` },
      results: [],
    };
  // GetVersion and Renew share the site's budget.
  const within = budget(book.now + limits.site_deadline_ms, () => book.now, limits.site_deadline_ms);
  try {
    const version = await sites.version(site, within.left('GetVersion')).catch(() => undefined);
    const latest = sites.latest(site, version, rec.createdAt);
    const granted = Math.min(at, maxAt, latest.at);
    if (granted <= book.now)
      return {
        site: s.site,
        outcome: { code: Status.PERMISSION_DENIED, reason: `site ${s.site}: cannot renew, ${latest.rule} has passed` },
        results: [],
      };
    const res = await withRetries('Renew', within, (deadlineMs) =>
      site.client.renew({ urns: [rec.urn], expiresAt: new Date(granted), bestEffort }, { chain: site.chain, deadlineMs }),
    );
    const bad = failedOf(res.results);
    const outcome: Outcome = bad.length
      ? {
          code: bad[0]?.status?.code ?? Status.UNKNOWN,
          reason: `site ${s.site}: ${bad.length} slivers not renewed: ${bad.map(sliverLine).join('; ')}`,
        }
      : OK;
    return { site: s.site, outcome, results: res.results, ...(bad.length < res.results.length ? { granted } : {}) };
  } catch (err) {
    return { site: s.site, outcome: siteOutcome(err, s.site), results: [] };
  }
}

/** One site's Status of a slice: its slivers by URN, 'gone' when the site no longer knows the slice, undefined when it did not answer. */
export async function statusAt(book: SliceBookState, sliceUrn: string, s: SiteRecord): Promise<Map<string, Sliver> | 'gone' | undefined> {
  if (!holdsSlivers(s)) return undefined;
  const site = book.deps.sites.get(s.site);
  if (!site) return undefined;
  try {
    const res = await site.client.status({ urns: [sliceUrn] }, { chain: site.chain, deadlineMs: book.deps.limits.status_deadline_ms });
    return new Map(res.slivers.map((x) => [x.urn, x]));
  } catch (err) {
    if (isServiceError(err, Status.NOT_FOUND)) return 'gone';
    book.deps.log.info(
      { slice: sliceUrn, site: s.site, err: (err as Error).message },
      'site did not report the slice; keeping its last known slivers',
    );
    return undefined;
  }
}
