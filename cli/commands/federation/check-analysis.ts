/**
 * Judging a federation's books against each other (pure: views in, findings
 * out). The truth is layered: a node runs slivers, its site's management
 * authority books them (and holds capacity for allocations), the slice
 * authority lists the slivers of each slice per site. Findings:
 *
 * - `orphan`: a node runs a sliver its site's books do not have (on that node);
 * - `ghost`: a book claims a sliver that the layer below does not have — a
 *   site booking a provisioned sliver its node does not run, or the slice
 *   authority listing a sliver its site does not hold;
 * - `held`: a site holds capacity (holds or slivers) for a slice the slice
 *   authority no longer has, or for slivers it does not list;
 * - `disagreement`: the slice authority and the site both have a sliver but
 *   differ on its node or its allocation state;
 * - `unsettled`: work begun (an intent) and not finished within the grace period;
 * - `unreachable`: a site or node that could not be read (nothing under it was checked).
 *
 * Work younger than the grace period, and anything that expired less than
 * the grace period ago (the reapers are on it), counts as in flight and is
 * not judged. Each finding names the fix that resolves it (check-fix.ts turns
 * it into a command).
 */
import { counted } from '../../printable.js';
import type { ClaimedSliver, FederationView, SaSlice, SiteSliver, SiteView } from './check-view.js';

/** A repair, as data. */
export type Fix =
  | {
      readonly op: 'delete-on-node';
      readonly site: string;
      readonly nodeUrn: string;
      readonly endpoint: string;
      readonly sliverUrn: string;
    }
  | { readonly op: 'release-at-site'; readonly site: string; readonly sliceUrn: string; readonly sliverUrns: readonly string[] }
  | { readonly op: 'delete-slice'; readonly sliceUrn: string }
  | { readonly op: 'refresh-slice'; readonly sliceUrn: string };

/** What kind of problem a finding is. */
export type FindingKind = 'orphan' | 'ghost' | 'held' | 'disagreement' | 'unsettled' | 'unreachable';

/** One problem found. */
export interface Finding {
  readonly kind: FindingKind;
  readonly site?: string;
  readonly nodeUrn?: string;
  readonly sliceUrn?: string;
  readonly sliverUrn?: string;
  /** What is wrong, in words. */
  readonly message: string;
  /** What resolves it; absent when only waiting (or bringing a party back) does. */
  readonly fix?: Fix;
}

/** A stable identity of a finding, to see the same problem in two readings. */
export function findingKey(f: Finding): string {
  return [f.kind, f.site ?? '', f.nodeUrn ?? '', f.sliceUrn ?? '', f.sliverUrn ?? ''].join(' ');
}

const LIVE_SA_STATES = new Set(['ready', 'partial', 'failed']);

/** Judges one reading: every finding, in a stable order. */
export function analyse(view: FederationView, options: { now: number; graceMs: number }): Finding[] {
  const { now, graceMs } = options;
  const out: Finding[] = [];
  const sa = view.sa;
  const age = (since: number): string => `${Math.round((now - since) / 1000)} s`;
  const recentlyExpired = (at: number | undefined): boolean => at !== undefined && at <= now && now - at < graceMs;

  // Slices with work in flight anywhere are not judged; work past the grace period is reported.
  const busy = new Set<string>();
  for (const w of sa.work) {
    busy.add(w.sliceUrn);
    if (now - w.since >= graceMs)
      out.push({
        kind: 'unsettled',
        sliceUrn: w.sliceUrn,
        message: `the slice authority began to ${w.kind} slice ${w.sliceUrn} ${age(w.since)} ago and has not finished (sites left: ${w.sites.join(', ') || 'none'}); it retries by itself — bring back any site that is down`,
      });
  }
  for (const s of sa.slices.values()) {
    if (s.state !== 'pending' && s.state !== 'deleting') continue;
    busy.add(s.urn);
    if (now - s.updatedAt >= graceMs && !sa.work.some((w) => w.sliceUrn === s.urn))
      out.push({
        kind: 'unsettled',
        sliceUrn: s.urn,
        message: `slice ${s.urn} has been ${s.state} for ${age(s.updatedAt)} with no work recorded for it at the slice authority`,
        fix: { op: 'delete-slice', sliceUrn: s.urn },
      });
  }
  for (const site of view.sites) {
    if (!site.ok) continue;
    for (const w of site.work) {
      busy.add(w.sliceUrn);
      if (now - w.since >= graceMs)
        out.push({
          kind: 'unsettled',
          site: site.domain,
          sliceUrn: w.sliceUrn,
          message: `site ${site.domain} began to ${w.kind} ${counted(w.sliverUrns.length, 'sliver')} of ${w.sliceUrn} on its nodes ${age(w.since)} ago and has not finished; it retries by itself — bring back any node that is down`,
        });
    }
  }

  for (const site of view.sites) {
    if (!site.ok) {
      out.push({
        kind: 'unreachable',
        site: site.domain,
        message: `site ${site.domain} could not be read (${site.error}); nothing there was checked`,
      });
      continue;
    }
    out.push(...judgeNodes(site, busy, recentlyExpired));
    out.push(...judgeSiteBooks(site, sa.urn, sa.slices, busy, recentlyExpired));
  }
  out.push(...judgeSaBooks(view, busy, recentlyExpired));
  return out.sort((a, b) => (findingKey(a) < findingKey(b) ? -1 : findingKey(a) > findingKey(b) ? 1 : 0));
}

type Recent = (at: number | undefined) => boolean;

/** Each node against its site's books: orphans, and slivers booked on a node that does not run them. */
function judgeNodes(site: Extract<SiteView, { ok: true }>, busy: ReadonlySet<string>, recentlyExpired: Recent): Finding[] {
  const out: Finding[] = [];
  const nodes = new Map(site.nodes.map((n) => [n.urn, n]));
  for (const n of site.nodes) {
    if (!site.nodesChecked) break;
    if (!n.slivers) {
      out.push({
        kind: 'unreachable',
        site: site.domain,
        nodeUrn: n.urn,
        message: `node ${n.urn} (${n.endpoint}, ${n.up ? 'UP' : 'DOWN'}) could not be read (${n.error ?? 'no answer'}); its slivers were not checked`,
      });
      continue;
    }
    for (const v of n.slivers) {
      if (busy.has(v.sliceUrn) || recentlyExpired(v.expiresAt)) continue;
      const rec = site.slivers.get(v.urn);
      if (rec && rec.nodeUrn === n.urn && rec.allocation === 'provisioned') continue;
      if (rec?.phase) continue;
      const why = !rec
        ? `site ${site.domain}'s books have no such sliver`
        : rec.nodeUrn !== n.urn
          ? `site ${site.domain} books it on ${rec.nodeUrn}`
          : `site ${site.domain} books it only as a hold, not as provisioned`;
      out.push({
        kind: 'orphan',
        site: site.domain,
        nodeUrn: n.urn,
        sliceUrn: v.sliceUrn,
        sliverUrn: v.urn,
        message: `node ${n.urn} runs sliver ${v.urn} of slice ${v.sliceUrn}, which no record explains: ${why}`,
        fix: { op: 'delete-on-node', site: site.domain, nodeUrn: n.urn, endpoint: n.endpoint, sliverUrn: v.urn },
      });
    }
  }
  if (!site.nodesChecked) return out;
  for (const rec of site.slivers.values()) {
    if (rec.allocation !== 'provisioned' || rec.phase || busy.has(rec.sliceUrn) || recentlyExpired(rec.expiresAt)) continue;
    const n = nodes.get(rec.nodeUrn);
    if (n && !n.slivers) continue;
    if (n?.slivers?.some((v) => v.urn === rec.urn)) continue;
    out.push({
      kind: 'ghost',
      site: site.domain,
      nodeUrn: rec.nodeUrn,
      sliceUrn: rec.sliceUrn,
      sliverUrn: rec.urn,
      message: `site ${site.domain} books sliver ${rec.urn} of slice ${rec.sliceUrn} as provisioned on ${rec.nodeUrn}, which ${n ? 'does not run it' : 'is not one of its nodes'} (${rec.cpuMillis} mCPU, ${rec.memMb} MB held)`,
      fix: { op: 'release-at-site', site: site.domain, sliceUrn: rec.sliceUrn, sliverUrns: [rec.urn] },
    });
  }
  return out;
}

/** The site's holdings against the slice authority's books: capacity held for slices or slivers it does not have. */
function judgeSiteBooks(
  site: Extract<SiteView, { ok: true }>,
  saUrn: string,
  saSlices: ReadonlyMap<string, SaSlice>,
  busy: ReadonlySet<string>,
  recentlyExpired: Recent,
): Finding[] {
  const out: Finding[] = [];
  const bySlice = new Map<string, SiteSliver[]>();
  for (const s of site.slivers.values()) {
    if (s.phase || recentlyExpired(s.expiresAt)) continue;
    const list = bySlice.get(s.sliceUrn) ?? [];
    list.push(s);
    bySlice.set(s.sliceUrn, list);
  }
  for (const [sliceUrn, held] of bySlice) {
    if (busy.has(sliceUrn) || site.slices.get(sliceUrn) !== saUrn) continue;
    const saSlice = saSlices.get(sliceUrn);
    const listed = new Set((saSlice?.sites.get(site.domain) ?? []).map((c) => c.urn));
    const extra = held.filter((s) => !listed.has(s.urn));
    if (extra.length === 0) continue;
    const holds = extra.filter((s) => s.allocation === 'allocated').length;
    const cpu = extra.reduce((n, s) => n + s.cpuMillis, 0);
    const mem = extra.reduce((n, s) => n + s.memMb, 0);
    const what = `${counted(extra.length, 'sliver')} (${counted(holds, 'hold')}, ${extra.length - holds} provisioned; ${cpu} mCPU, ${mem} MB)`;
    const whole = extra.length === held.length;
    const why = !saSlice
      ? 'which the slice authority does not have'
      : listed.size === 0
        ? `which the slice authority has as ${saSlice.state.toUpperCase()} with nothing at ${site.domain}`
        : 'that the slice authority does not list for it';
    out.push({
      kind: 'held',
      site: site.domain,
      sliceUrn,
      ...(whole ? {} : { sliverUrn: extra.map((s) => s.urn).join(',') }),
      message: `site ${site.domain} holds ${what} for slice ${sliceUrn}, ${why}`,
      fix: { op: 'release-at-site', site: site.domain, sliceUrn, sliverUrns: whole ? [] : extra.map((s) => s.urn) },
    });
  }
  return out;
}

/** The slice authority's listings against each site's books: ghosts and disagreements. */
function judgeSaBooks(view: FederationView, busy: ReadonlySet<string>, recentlyExpired: Recent): Finding[] {
  const out: Finding[] = [];
  const sites = new Map(view.sites.map((s) => [s.domain, s]));
  for (const slice of view.sa.slices.values()) {
    if (busy.has(slice.urn) || !LIVE_SA_STATES.has(slice.state)) continue;
    for (const [domain, claims] of slice.sites) {
      const site = sites.get(domain);
      if (!site?.ok) continue;
      if (slice.state === 'failed') {
        out.push(...failedClaims(slice, domain, site, claims, recentlyExpired));
        continue;
      }
      for (const c of claims) {
        if (recentlyExpired(c.expiresAt)) continue;
        const rec = site.slivers.get(c.urn);
        if (rec?.phase) continue;
        if (!rec) {
          out.push({
            kind: 'ghost',
            site: domain,
            sliceUrn: slice.urn,
            sliverUrn: c.urn,
            message: `the slice authority lists sliver ${c.urn} of slice ${slice.urn} (${slice.state.toUpperCase()}) at ${domain} on ${c.nodeUrn}, which ${domain} does not hold`,
            fix: { op: 'delete-slice', sliceUrn: slice.urn },
          });
          continue;
        }
        if (!sameSliver(c, rec)) {
          const refreshable = slice.state === 'ready' || slice.state === 'partial';
          out.push({
            kind: 'disagreement',
            site: domain,
            sliceUrn: slice.urn,
            sliverUrn: c.urn,
            message: `sliver ${c.urn} of slice ${slice.urn}: the slice authority has it ${c.allocation} on ${c.nodeUrn}, ${domain} has it ${rec.allocation} on ${rec.nodeUrn}`,
            fix: refreshable ? { op: 'refresh-slice', sliceUrn: slice.urn } : { op: 'delete-slice', sliceUrn: slice.urn },
          });
        }
      }
    }
  }
  return out;
}

/** A FAILED slice keeps nothing: what it still lists at a site is held there, or a ghost if the site let it go. */
function failedClaims(
  slice: SaSlice,
  domain: string,
  site: Extract<SiteView, { ok: true }>,
  claims: readonly ClaimedSliver[],
  recentlyExpired: Recent,
): Finding[] {
  const left = claims.filter((c) => !recentlyExpired(c.expiresAt) && !site.slivers.get(c.urn)?.phase);
  const held = left.filter((c) => site.slivers.has(c.urn));
  const gone = left.filter((c) => !site.slivers.has(c.urn));
  const out: Finding[] = [];
  if (held.length > 0)
    out.push({
      kind: 'held',
      site: domain,
      sliceUrn: slice.urn,
      message: `slice ${slice.urn} FAILED, but ${domain} still holds ${held.length} of its slivers (${held.map((c) => c.urn).join(', ')}) and the slice authority has no work left to release them`,
      fix: { op: 'delete-slice', sliceUrn: slice.urn },
    });
  for (const c of gone)
    out.push({
      kind: 'ghost',
      site: domain,
      sliceUrn: slice.urn,
      sliverUrn: c.urn,
      message: `the slice authority still lists sliver ${c.urn} of FAILED slice ${slice.urn} at ${domain}, which ${domain} no longer holds`,
      fix: { op: 'delete-slice', sliceUrn: slice.urn },
    });
  return out;
}

function sameSliver(a: ClaimedSliver, b: ClaimedSliver): boolean {
  return a.nodeUrn === b.nodeUrn && a.allocation === b.allocation;
}
