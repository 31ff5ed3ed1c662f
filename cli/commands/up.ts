/**
 * `fedlab up [--sites planetlab,emulab,protogeni] [--nodes N] [--dir DIR] [--once]`:
 * a whole federation on this machine (see cli/up/federation.ts), a service
 * deployed across every site, and a live table of it. Runs until Ctrl-C or
 * SIGTERM, then deletes the deployment and stops every process; `--once`
 * exits 0 as soon as every sliver's service runs, non-zero with what failed.
 * Exit codes: 0 ready (`--once`) or stopped cleanly; 1 the federation failed; 2 bad input.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { InvalidArgumentError } from '../../services/core/errors.js';
import type { Deployment } from '../../services/generated/fedlab/v1/service_provider.js';
import { action, CliExit, EXIT_FAILURE } from '../cli-support.js';
import { parseDuration, parsePositiveInt } from '../flag-values.js';
import { printableText, writeErr } from '../printable.js';
import { LocalFederation } from '../up/federation.js';
import { homeUrns } from '../up/pki.js';
import { sshUsageLines } from '../up/ssh-access.js';
import { ALL_STYLES, parseSites } from '../up/plan.js';
import { defaultFedlabArgs } from '../up/processes.js';
import { collectStatus, readiness, renderStatus, statusLine } from '../up/status.js';
import { sleep } from '../../services/core/timing.js';

/** The demo service: a shell loop that prints a line every second. */
export const DEMO_COMMAND = ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo "hello from $(hostname) #$i"; sleep 1; done'];
/** The demo deployment's name in a run of a directory: `hello`, then `hello-2`, ... (a deleted deployment's name stays taken). */
export function demoDeployment(run: number): string {
  return run <= 1 ? 'hello' : `hello-${run}`;
}

interface UpFlags {
  sites: string;
  nodes: string;
  dir: string;
  once?: boolean;
  timeout: string;
  driver: 'auto' | 'container' | 'process';
  interval: string;
}

/** Whether a role's process serves its role's API (the `listening` line lists the services). */
function serves(line: Record<string, unknown> | undefined, service: string): boolean {
  return Array.isArray(line?.services) && (line.services as unknown[]).includes(service);
}

/** How to use the CLI against the running federation: exact commands with the right paths. */
export function usageText(fed: LocalFederation, dep?: Deployment): string {
  const name = demoDeployment(fed.run);
  const cli = defaultFedlabArgs().join(' ');
  const h = fed.homePaths;
  const sa = `--sa ${fed.saAddress} --tls-dir ${h.sp}`;
  const sp = `--sp ${fed.spAddress} --tls-dir ${h.operator}`;
  const lines = [
    'How to use it (from any directory, while it runs):',
    `  alias fedlab="node ${cli}"`,
    '  # each site, as its administrator',
  ];
  for (const s of fed.sites) lines.push(`  fedlab node ls --ma ${s.address} --tls-dir ${s.paths.admin}`);
  lines.push(
    `  # the slice authority, as the provider ${homeUrns(fed.home).sp}`,
    `  fedlab slice ls ${sa}`,
    `  fedlab slice show ${name} ${sa}`,
    '  # the service provider, as its operator',
    `  fedlab deployment show ${name} ${sp}`,
    `  fedlab deploy ${sp} --name echo --site ${fed.sites[0]?.domain ?? fed.home}=1 -- sh -c 'while true; do date; sleep 5; done'`,
  );
  const t = dep?.targets[0];
  if (t && existsSync(fed.memberChainFile)) {
    const member = `--node ${t.nodeEndpoint} --sliver ${t.sliverUrn} --chain ${fed.memberChainFile} --tls-dir ${h.member} --ca ${fed.allCaFile}`;
    lines.push(
      `  # a member of the provider, with its delegated chain (exec and read only; the provider gave it with fedlab member delegate)`,
      `  fedlab sliver exec ${member} -- hostname`,
      `  fedlab sliver logs ${member} --lines 5`,
    );
  }
  lines.push(...sshUsageLines(fed));
  lines.push(`Everything (certificates, configs, data) is in ${fed.dir}; the services' logs in ${fed.dir}/logs/.`);
  return lines.join('\n');
}

/** Runs `fedlab up`. Exported for tests that run it in-process. */
export async function runUp(f: UpFlags, out: NodeJS.WriteStream = process.stdout): Promise<number> {
  const styles = parseSites(f.sites);
  const nodes = parsePositiveInt(f.nodes, '--nodes');
  const timeoutMs = parseDuration(f.timeout, '--timeout') * 1000;
  const intervalMs = Math.max(250, parseDuration(f.interval, '--interval') * 1000);
  const tty = out.isTTY === true;
  const say = (l: string): void => void out.write(`${printableText(l)}\n`);
  const started = Date.now();
  const fed = await LocalFederation.open({ dir: resolve(f.dir), sites: styles, nodes, driver: f.driver, say });
  if (!fed.fresh) say(`reusing the federation in ${fed.dir}`);
  if (fed.driver.kind === 'process') {
    say(
      `WARNING: slivers use the process driver and are NOT isolated (${fed.driver.reason}); run as root on a machine with cgroups for containers.`,
    );
  }
  let stopping: Promise<number> | undefined;
  let deployed = false;
  const shutdown = async (code: number): Promise<number> => {
    say('stopping: deleting the deployment, then every process');
    if (deployed && fed.sp?.running()) {
      const ok = await fed.deleteDeployment(demoDeployment(fed.run), 30_000);
      if (!ok) say('the deployment could not be deleted through the provider; its slivers are removed below');
    }
    const killed = await fed.stop();
    if (killed.length) say(`had to kill ${killed.join(', ')} (they did not stop within the grace period)`);
    const left = await fed.sweepLeftovers();
    if (left.length) say(`removed leftovers: ${left.join('; ')}`);
    say(`stopped; everything is in ${fed.dir} (run again with the same --dir to reuse it)`);
    return code;
  };
  // A signal handler sets `stopping` behind the compiler's back; read it through this.
  const stopRequested = (): Promise<number> | undefined => stopping;
  const onSignal = (): void => {
    if (stopping) {
      // A second Ctrl-C: no more waiting for graceful stops.
      say('stopping now: killing every process');
      for (const p of fed.processes) p.killSync();
      return;
    }
    stopping = shutdown(0);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await fed.startSites();
    if (stopRequested()) return await (stopRequested() as Promise<number>);
    await fed.peerDomains();
    await fed.delegateToSliceAuthority();
    await fed.startSliceAuthority();
    await fed.startServiceProvider();
    const saReady = serves(fed.sa?.seen('listening'), 'fedlab.v1.SliceAuthority');
    const spReady = serves(fed.sp?.seen('listening'), 'fedlab.v1.ServiceProvider');
    if (!saReady || !spReady) {
      const missing = [!saReady ? 'the slice authority (fedlab serve sa)' : '', !spReady ? 'the service provider (fedlab serve sp)' : '']
        .filter(Boolean)
        .join(' and ');
      throw new CliExit(
        EXIT_FAILURE,
        `${missing} does not serve its API in this build, so no slice can be made; the sites run (see above)`,
      );
    }
    if (stopRequested()) return await (stopRequested() as Promise<number>);
    say(
      `deploying "${demoDeployment(fed.run)}" (${DEMO_COMMAND.slice(2).join(' ')}) on every node of ${fed.sites.map((s) => s.domain).join(', ')}`,
    );
    deployed = true;
    // The deployment runs on; its progress is followed through the table below.
    const deploying = fed
      .deploy(demoDeployment(fed.run), DEMO_COMMAND, {
        timeoutMs: timeoutMs,
        onEvent: (e) => {
          if (!tty && e.message) say(`  ${e.site ? `${e.site}: ` : ''}${e.message}`);
        },
      })
      .catch((err: unknown) => {
        say(`deploy: ${(err as Error).message.split('\n')[0]}`);
        return undefined;
      });
    let deployDone = false;
    let announced = false;
    let usage = '';
    const expected = fed.sites.reduce((n, s) => n + s.nodes.length, 0);
    const deadline = Date.now() + timeoutMs;
    let lastPlain = '';
    let lastPlainAt = 0;
    let drawn = 0;
    for (;;) {
      if (stopRequested()) return await (stopRequested() as Promise<number>);
      const status = await collectStatus(fed, demoDeployment(fed.run));
      const r = readiness(status, expected);
      if (tty) {
        const lines = [
          ...renderStatus(status, `fedlab up: ${fed.dir} (${fed.driver.kind} driver)${f.once ? '' : ' — Ctrl-C stops it'}`),
          ...(usage ? ['', ...usage.split('\n')] : []),
        ];
        // Redraw in place: move up over the previous table and clear to the end of the screen
        // (a table taller than the terminal cannot be reached by moving up: clear the screen then).
        const tall = lines.length >= (out.rows || 24) - 1;
        // The escapes are ours alone: whatever the services said is printable.
        out.write(`${tall ? '\x1b[H\x1b[2J' : drawn ? `\x1b[${drawn}A` : ''}\x1b[0J${printableText(lines.join('\n'))}\n`);
        drawn = lines.length;
      } else {
        // A line when something other than the output sample changed, else one every 10 s.
        const line = statusLine(status);
        const key = line.slice(25).replace(/; e\.g\. .*$/, '');
        if (key !== lastPlain || Date.now() - lastPlainAt >= 10_000) {
          say(line);
          lastPlain = key;
          lastPlainAt = Date.now();
        }
      }
      if (r.ready && !announced) {
        announced = true;
        if (status.deployment?.sliceUrn) await fed.prepareMember(status.deployment.sliceUrn).catch(() => undefined);
        const msg = `ready: the service runs in all ${expected} slivers on ${fed.sites.length} sites, ${((Date.now() - started) / 1000).toFixed(1)} s after start`;
        if (!f.once) {
          usage = `${msg}\n${usageText(fed, status.deployment)}`;
          if (!tty) say(usage);
        }
      }
      if (f.once && r.ready) {
        if (!tty) say(renderStatus(status, `fedlab up: ${fed.dir}`).join('\n'));
        say(
          `ready: the service runs in all ${expected} slivers on ${fed.sites.length} sites, ${((Date.now() - started) / 1000).toFixed(1)} s after start`,
        );
        say(usageText(fed, status.deployment));
        return await (stopping ?? (stopping = shutdown(0)));
      }
      if (f.once && Date.now() > deadline) {
        say(`not ready after ${Math.round(timeoutMs / 1000)} s:\n  ${r.problems.join('\n  ')}`);
        return await (stopping ?? (stopping = shutdown(EXIT_FAILURE)));
      }
      // Wake up early when the deploy stream ends (its final state), not again after that.
      await Promise.race([sleep(intervalMs), deployDone ? new Promise(() => {}) : deploying.then(() => (deployDone = true))]);
    }
  } catch (err) {
    if (!stopping) {
      writeErr(`fedlab: ${(err as Error).message}\n`);
      stopping = shutdown(err instanceof CliExit ? err.exitCode : err instanceof InvalidArgumentError ? 2 : EXIT_FAILURE);
    }
    return await stopping;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Registers `fedlab up`. */
export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('run a whole federation on this machine (three sites, a slice authority, a provider) and deploy a service across it')
    .option(
      '--sites <styles>',
      'site styles, comma-separated (the first is the home of the slice authority and provider)',
      ALL_STYLES.join(','),
    )
    .option('--nodes <n>', 'node managers per site', '3')
    .option('--dir <dir>', 'where certificates, configs, data and logs live (reused when run again)', 'fedlab-up')
    .option('--once', 'exit 0 once every sliver runs the service (then stop everything), non-zero if not within --timeout')
    .option('--timeout <duration>', 'how long --once waits, e.g. 120s', '180s')
    .option('--interval <duration>', 'how often the table is refreshed', '1s')
    .addOption(
      new Option('--driver <kind>', 'sliver driver of the node managers').choices(['auto', 'container', 'process']).default('auto'),
    )
    .action(
      action(async (f: UpFlags) => {
        const code = await runUp(f);
        if (code !== 0) process.exitCode = code;
      }),
    );
}
