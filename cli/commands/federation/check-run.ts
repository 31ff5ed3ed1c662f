/**
 * One run of `fedlab federation check` (also the oracle of the chaos suite):
 * read the federation, judge it, and — when something turned up — read and
 * judge it again a moment later, keeping only what both readings found (the
 * parties are read one after another, so a call that completes between two
 * reads can look like a problem once). With `fix`, the fixes of what was
 * found are applied and the federation is checked again.
 */
import { sleep } from '../../../services/core/timing.js';
import { analyse, findingKey, type Finding } from './check-analysis.js';
import { applyFixes, type FixResult } from './check-fix.js';
import { readFederation } from './check-read.js';
import type { CheckTarget } from './check-target.js';
import type { FederationView } from './check-view.js';

/** What was read, in numbers. */
export interface CheckSummary {
  readonly sliceAuthority: string;
  /** Slices the slice authority has that are not DELETED or EXPIRED. */
  readonly slices: number;
  readonly sites: readonly {
    readonly domain: string;
    readonly read: boolean;
    readonly slices: number;
    /** Slivers the site holds (allocated or provisioned). */
    readonly slivers: number;
    readonly nodes: number;
    /** Nodes whose slivers were read. */
    readonly nodesRead: number;
    /** Slivers the nodes run. */
    readonly sliversOnNodes: number;
  }[];
}

/** The result of a check. */
export interface CheckReport {
  /** Nothing found (after the fixes, with `fix`). */
  readonly clean: boolean;
  readonly findings: readonly Finding[];
  /** What was not checked, and why. */
  readonly notes: readonly string[];
  readonly summary: CheckSummary;
  /** With `fix`: what each fix did, and what a check after them found. */
  readonly fixes?: readonly FixResult[];
  readonly after?: readonly Finding[];
}

/** Options of {@link runCheck}. */
export interface CheckOptions {
  readonly fix?: boolean;
  /** Wait before the confirming reading (ms); 0 skips it. Default 1500. */
  readonly confirmMs?: number;
  /** Wait after the fixes before checking again (ms). Default 2000. */
  readonly settleMs?: number;
}

/** Reads and judges, confirming what was found with a second reading. */
export async function checkOnce(target: CheckTarget, confirmMs = 1500): Promise<{ view: FederationView; findings: Finding[] }> {
  const view = await readFederation(target);
  const findings = analyse(view, { now: Date.now(), graceMs: target.graceMs });
  if (findings.length === 0 || confirmMs <= 0) return { view, findings };
  await sleep(confirmMs);
  const again = await readFederation(target);
  const second = analyse(again, { now: Date.now(), graceMs: target.graceMs });
  const first = new Set(findings.map(findingKey));
  return { view: again, findings: second.filter((f) => first.has(findingKey(f))) };
}

/** A check, with fixes and a check after them when asked. */
export async function runCheck(target: CheckTarget, options: CheckOptions = {}): Promise<CheckReport> {
  const confirmMs = options.confirmMs ?? 1500;
  const { view, findings } = await checkOnce(target, confirmMs);
  const base = { findings, notes: notesOf(target, view), summary: summaryOf(view) };
  if (!options.fix || findings.length === 0) return { ...base, clean: findings.length === 0 };
  const fixes = await applyFixes(
    target,
    findings.flatMap((f) => (f.fix ? [f.fix] : [])),
  );
  await sleep(options.settleMs ?? 2000);
  const after = (await checkOnce(target, confirmMs)).findings;
  return { ...base, fixes, after, clean: after.length === 0 };
}

function notesOf(target: CheckTarget, view: FederationView): string[] {
  const notes: string[] = [];
  for (const s of target.sites)
    if (!s.nodes)
      notes.push(`the nodes of ${s.domain} were not read (no --node-chain ${s.domain}=FILE): orphans and ghosts there were not looked for`);
  const given = new Set(target.sites.map((s) => s.domain));
  const elsewhere = new Set<string>();
  for (const slice of view.sa.slices.values()) for (const d of slice.sites.keys()) if (!given.has(d)) elsewhere.add(d);
  if (elsewhere.size > 0)
    notes.push(`the slice authority also uses ${[...elsewhere].sort().join(', ')}, not checked (give --ma <domain>=<host:port> for each)`);
  return notes;
}

function summaryOf(view: FederationView): CheckSummary {
  return {
    sliceAuthority: view.sa.urn,
    slices: [...view.sa.slices.values()].filter((s) => s.state !== 'deleted' && s.state !== 'expired').length,
    sites: view.sites.map((s) =>
      s.ok
        ? {
            domain: s.domain,
            read: true,
            slices: s.slices.size,
            slivers: s.slivers.size,
            nodes: s.nodes.length,
            nodesRead: s.nodes.filter((n) => n.slivers).length,
            sliversOnNodes: s.nodes.reduce((n, x) => n + (x.slivers?.length ?? 0), 0),
          }
        : { domain: s.domain, read: false, slices: 0, slivers: 0, nodes: 0, nodesRead: 0, sliversOnNodes: 0 },
    ),
  };
}
