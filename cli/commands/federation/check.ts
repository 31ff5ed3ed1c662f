/**
 * `fedlab federation check`: the consistency checker for operators. Reads a
 * slice authority's slices, each site's books and each node's slivers (see
 * check-read.ts), and reports orphans (a sliver no record explains), ghosts
 * (a record with no sliver), capacity held for slices that are gone, and
 * disagreements, each with the command that fixes it; `--fix` applies them
 * and checks again. Run it on a quiet federation: work younger than
 * `--grace` counts as in flight and is not judged.
 * Exit codes: 0 nothing found (after the fixes, with --fix); 1 something
 * found (or left), or the slice authority could not be read; 2 bad input.
 */
import type { Command } from 'commander';
import { action, printJson } from '../../cli-support.js';
import { repeatable } from '../../flag-values.js';
import { counted } from '../../printable.js';
import { refused } from '../../remote.js';
import type { Finding } from './check-analysis.js';
import { fixCommand } from './check-fix.js';
import { runCheck, type CheckReport } from './check-run.js';
import { checkTarget, type CheckFlags, type CheckTarget } from './check-target.js';

/** Registers `fedlab federation check`. */
export function registerFederationCheck(federation: Command): void {
  federation
    .command('check')
    .description(
      "check a slice authority's slices against its sites' books and their nodes' slivers; print what is wrong and the command that fixes it",
    )
    .requiredOption('--sa <host:port>', 'the slice authority')
    .option('--sa-urn <urn>', "pin the slice authority's certificate to this URN (instead of checking its host name)")
    .requiredOption('--tls-dir <dir>', 'an administrator of the slice authority (and of every site without --site-tls)')
    .option('--ma <domain>=<host:port>', "a site to check: its management authority's address (repeatable)", repeatable, [])
    .option('--site-tls <domain>=<dir>', "that site's administrator, when not --tls-dir (repeatable)", repeatable, [])
    .option(
      '--node-chain <domain>=<file>',
      "a chain rooted at the site's node owner granting node.read, sliver.read and sliver.delete on its nodes (e.g. owner → MA); without it the site's nodes are not read (repeatable)",
      repeatable,
      [],
    )
    .option('--node-tls <domain>=<dir>', 'who holds that chain, when not the site administrator (repeatable)', repeatable, [])
    .option('--sa-tls-dir <dir>', "the slice authority's own identity: to release what sites hold for slices it no longer has (--fix)")
    .option(
      '--site-chain <domain>=<file>',
      "the slice authority's MA → SA chain for the site (its config's chain_file; repeatable)",
      repeatable,
      [],
    )
    .option('--ca <file>', "CA certificates that verify every server (e.g. every domain's CA in one file)")
    .option('--grace <duration>', 'work younger than this is in flight and not judged (default 30s)')
    .option('--timeout <duration>', 'deadline of each call (default 10s)')
    .option('--fix', 'apply the fixes, then check again')
    .option('--json', 'print the report as JSON')
    .action(
      action(async (flags: CheckFlags & { fix?: boolean; json?: boolean }) => {
        const target = checkTarget(flags);
        const report = await runCheck(target, { fix: flags.fix === true }).catch((err: unknown) =>
          refused(err, `could not read the slice authority at ${target.sa.address}`),
        );
        if (flags.json) printJson(reportJson(target, report));
        else process.stdout.write(reportText(target, report));
        process.exitCode = report.clean ? 0 : 1;
      }),
    );
}

function findingJson(target: CheckTarget, f: Finding): Record<string, unknown> {
  return {
    kind: f.kind,
    ...(f.site ? { site: f.site } : {}),
    ...(f.nodeUrn ? { node_urn: f.nodeUrn } : {}),
    ...(f.sliceUrn ? { slice_urn: f.sliceUrn } : {}),
    ...(f.sliverUrn ? { sliver_urn: f.sliverUrn } : {}),
    message: f.message,
    ...(f.fix ? { fix: f.fix, command: fixCommand(target, f.fix) } : {}),
  };
}

/** The report as JSON (snake_case keys, each finding with its fix command). */
export function reportJson(target: CheckTarget, r: CheckReport): Record<string, unknown> {
  return {
    clean: r.clean,
    summary: r.summary,
    findings: r.findings.map((f) => findingJson(target, f)),
    notes: r.notes,
    ...(r.fixes ? { fixes: r.fixes.map((x) => ({ command: x.command, ok: x.ok, message: x.message })) } : {}),
    ...(r.after ? { after: r.after.map((f) => findingJson(target, f)) } : {}),
  };
}

function findingLines(target: CheckTarget, findings: readonly Finding[]): string[] {
  return findings.flatMap((f) => [
    `  ${f.kind.padEnd(12)} ${f.message}`,
    `  ${''.padEnd(12)} fix: ${f.fix ? fixCommand(target, f.fix) : 'none to run: wait, or bring back the party that is down'}`,
  ]);
}

/** The report for a person. */
export function reportText(target: CheckTarget, r: CheckReport): string {
  const lines = [`slice authority ${r.summary.sliceAuthority}: ${counted(r.summary.slices, 'slice')}`];
  for (const s of r.summary.sites)
    lines.push(
      s.read
        ? `  ${s.domain}: ${counted(s.slices, 'slice')}, ${counted(s.slivers, 'sliver')} held; ${s.nodesRead} of ${counted(s.nodes, 'node')} read, ${counted(s.sliversOnNodes, 'sliver')} on them`
        : `  ${s.domain}: not read`,
    );
  if (r.findings.length === 0) lines.push('no problems found');
  else lines.push(`found ${counted(r.findings.length, 'problem')}:`, ...findingLines(target, r.findings));
  for (const n of r.notes) lines.push(`note: ${n}`);
  if (r.fixes) {
    lines.push(`applied ${counted(r.fixes.length, 'fix', 'fixes')}:`);
    for (const x of r.fixes) lines.push(`  ${x.ok ? 'done  ' : 'FAILED'} ${x.command}`, `         ${x.message}`);
    if (r.after && r.after.length > 0)
      lines.push(`left after the fixes: ${counted(r.after.length, 'problem')}:`, ...findingLines(target, r.after));
    else lines.push('after the fixes: no problems found');
  }
  return `${lines.join('\n')}\n`;
}
