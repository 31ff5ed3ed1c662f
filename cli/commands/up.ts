/**
 * `fedlab up [--sites planetlab,emulab,protogeni] [--nodes N] [--dir DIR] [--once]`:
 * a whole federation on this machine (see cli/up/federation.ts), a service
 * deployed across every site, and a live table of it. Runs until Ctrl-C or
 * SIGTERM or a hang-up, then deletes every deployment and slice, stops every
 * process and removes what they left (see cli/up/stop-sequence.ts), saying
 * each step in up.log in its folder; `--once` exits 0 as soon as every
 * sliver's service runs, non-zero with what failed. What a run that did not
 * stop left is stopped and deleted first (`--keep`: adopted).
 * Exit codes: 0 ready (`--once`) or stopped cleanly; 1 the federation failed; 2 bad input.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { DeploymentState, type Deployment } from '../../services/generated/fedlab/v1/service_provider.js';
import { action, CliExit, EXIT_FAILURE } from '../cli-support.js';
import { parseDuration, parsePositiveInt } from '../flag-values.js';
import { LocalFederation } from '../up/federation.js';
import { homeUrns } from '../up/pki.js';
import { sshUsageLines } from '../up/ssh-access.js';
import { ALL_STYLES, parseSites } from '../up/plan.js';
import { defaultFedlabArgs } from '../up/processes.js';
import { collectStatus, readiness, renderStatus, statusLine } from '../up/status.js';
import { sleep } from '../../services/core/timing.js';
import { deleteHoldings, holdingLines, listHoldings, type Holdings } from '../up/leftovers.js';
import { demoLinks } from '../up/demo-links.js';
import { LiveView } from '../up/live-view.js';
import { noNetworkReason } from '../up/node-networks.js';
import { StopSignals, stopFederation } from '../up/stop-sequence.js';
import { UpOutput, type OutStream } from '../up/up-output.js';
import { writeUpProfiles, type UpProfiles } from '../up/up-profiles.js';
import type { ProgramContext } from '../program-context.js';
import { counted } from '../printable.js';

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
  keep?: boolean;
}

/** Whether a role's process serves its role's API (the `listening` line lists the services). */
function serves(line: Record<string, unknown> | undefined, service: string): boolean {
  return Array.isArray(line?.services) && (line.services as unknown[]).includes(service);
}

/** How to use the CLI against the running federation: exact commands, short with the federation's profiles when they could be written. */
export function usageText(
  fed: LocalFederation,
  dep?: Deployment,
  name = demoDeployment(fed.run),
  profiles?: UpProfiles,
  notes: readonly string[] = [],
): string {
  const cli = defaultFedlabArgs().join(' ');
  const h = fed.homePaths;
  const saLong = `--sa ${fed.saAddress} --tls-dir ${h.sp}`;
  const sa = profiles ? `--profile ${profiles.provider}` : saLong;
  const sp = profiles ? `--profile ${profiles.operator}` : `--sp ${fed.spAddress} --tls-dir ${h.operator}`;
  const lines = [
    'How to use it (from any directory, while it runs):',
    `  alias fedlab="node ${cli}"`,
    ...(profiles
      ? [
          `  # with the profiles this run wrote in ${profiles.file} (fedlab profile show NAME); without them:`,
          `  #   fedlab slice ls ${saLong}`,
        ]
      : []),
    '  # each site, as its administrator',
  ];
  for (const s of fed.sites) {
    const site = profiles?.sites.get(s.domain);
    lines.push(`  fedlab node ls ${site ? `--profile ${site}` : `--ma ${s.address} --tls-dir ${s.paths.admin}`}`);
  }
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
    const who = profiles ? `--profile ${profiles.member}` : `--chain ${fed.memberChainFile} --tls-dir ${h.member} --ca ${fed.allCaFile}`;
    const member = `--node ${t.nodeEndpoint} --sliver ${t.sliverUrn} ${who}`;
    lines.push(
      `  # a member of the provider, with its delegated chain (exec and read only; the provider gave it with fedlab member delegate)`,
      `  fedlab sliver exec ${member} -- hostname`,
      `  fedlab sliver logs ${member} --lines 5`,
    );
  }
  lines.push(...sshUsageLines(fed), ...notes.map((n) => `  # ${n}`));
  lines.push(`Everything (certificates, configs, data) is in ${fed.dir}; the services' logs in ${fed.dir}/logs/.`);
  return lines.join('\n');
}

/** The view's title. */
function title(fed: LocalFederation, once: boolean | undefined): string {
  return `fedlab up: ${fed.dir} (${fed.driver.kind} driver)${once ? '' : ' — Ctrl-C stops it'}`;
}

/**
 * What an earlier run that did not stop left on the sites: deleted (listed first), or with `keep`
 * adopted. Returns the live deployment of the demo to adopt, if any.
 */
async function leftoversOnSites(
  fed: LocalFederation,
  o: UpOutput,
  keep: boolean,
  stopping: () => boolean,
): Promise<Deployment | undefined> {
  const h = await listHoldings(fed).catch(() => ({ deployments: [], slices: [] }) as Holdings);
  const lines = holdingLines(h);
  if (!lines.length) return undefined;
  o.say(`an earlier run of ${fed.dir} left on the sites:`);
  for (const l of lines) o.say(`  ${l}`);
  if (keep) {
    o.say('kept (--keep): shown below, and deleted when this run stops');
    return h.deployments.find((d) => /^hello(-\d+)?$/.test(d.name) && d.state !== DeploymentState.DEPLOYMENT_STATE_FAILED);
  }
  o.say('deleting them (run with --keep to adopt them instead)');
  const failed = await deleteHoldings(fed, h, 60_000, stopping);
  if (failed.length) o.say(`could not delete ${failed.join(', ')}; the new deployment may find nodes taken`);
  return undefined;
}

/** Runs `fedlab up`. Exported for tests that run it in-process. */
export async function runUp(
  f: UpFlags,
  out: OutStream = process.stdout,
  errOut: OutStream = process.stderr,
  context: ProgramContext = {},
): Promise<number> {
  const o = new UpOutput(out, errOut);
  try {
    return await runWith(f, o, context);
  } finally {
    o.close();
  }
}

async function runWith(f: UpFlags, o: UpOutput, context: ProgramContext): Promise<number> {
  const styles = parseSites(f.sites);
  const nodes = parsePositiveInt(f.nodes, '--nodes');
  const timeoutMs = parseDuration(f.timeout, '--timeout') * 1000;
  const intervalMs = Math.max(250, parseDuration(f.interval, '--interval') * 1000);
  const say = (l: string): void => o.say(l);
  const started = Date.now();
  const fed = await LocalFederation.open({
    dir: resolve(f.dir),
    sites: styles,
    nodes,
    driver: f.driver,
    say,
    leftovers: f.keep ? 'keep' : 'clean',
  });
  o.logTo(fed.dir);
  o.log(`fedlab up (pid ${process.pid}): ${process.argv.slice(2).join(' ')}`);
  if (!fed.fresh) say(`reusing the federation in ${fed.dir}`);
  say(`this run's log: ${o.logPath ?? ''}`);
  if (fed.driver.kind === 'process') {
    say(
      `WARNING: slivers use the process driver and are NOT isolated (${fed.driver.reason}); run as root on a machine with cgroups for containers.`,
    );
  }
  const noNetwork = noNetworkReason(fed);
  if (fed.driver.kind === 'container' && noNetwork) say(`slivers get no network of their own (only loopback): ${noNetwork}`);
  const view = new LiveView(o);
  // The federation's profiles, written once its services run (their ports are then known).
  const profilesOf = (f2: LocalFederation): UpProfiles | undefined => {
    try {
      return writeUpProfiles(f2, context.profiles?.location);
    } catch (err) {
      o.log(`the profiles could not be written (${(err as Error).message.split('\n')[0]}); the commands are printed in full`);
      return undefined;
    }
  };
  let stopping: Promise<number> | undefined;
  const signals = new StopSignals(
    (sig) => {
      stopping ??= shutdown(0, sig);
    },
    () => {
      // A second Ctrl-C: no more waiting for graceful stops.
      say('stopping now: killing every process (a second Ctrl-C)');
      for (const p of fed.processes) p.killSync();
    },
  );
  const shutdown = async (code: number, why: string): Promise<number> => {
    signals.begun();
    view.stop();
    say(`stopping (${why}): deleting the deployments and slices, then every process`);
    try {
      await stopFederation(fed, say, () => signals.forced);
    } catch (err) {
      say(`the stop failed: ${(err as Error).message.split('\n')[0]}`);
      for (const p of fed.processes) p.killSync();
    }
    say(`stopped; everything is in ${fed.dir} (this run's log: ${o.logPath ?? ''}; run again with the same --dir to reuse it)`);
    return code;
  };
  // Nothing thrown where nobody awaits may skip the stop.
  const onFatal = (err: unknown): void => {
    o.error(`fedlab: ${(err as Error)?.message ?? String(err)}`);
    stopping ??= shutdown(EXIT_FAILURE, 'an unexpected error');
  };
  // A signal handler sets `stopping` behind the compiler's back; read it through this.
  const stopRequested = (): Promise<number> | undefined => stopping;
  signals.install();
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
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
    const adopted = await leftoversOnSites(fed, o, f.keep === true, () => stopRequested() !== undefined);
    if (stopRequested()) return await (stopRequested() as Promise<number>);
    const name = adopted?.name ?? demoDeployment(fed.run);
    let deploying: Promise<Deployment | undefined>;
    // The demo slice's links (an emulab link, a stitched one); why any is missing goes in the summary.
    const links = adopted ? undefined : demoLinks(fed);
    const notes = links?.skipped ?? [];
    if (adopted) {
      say(`adopting the deployment "${name}" of an earlier run`);
      deploying = Promise.resolve(adopted);
    } else {
      say(`deploying "${name}" (${DEMO_COMMAND.slice(2).join(' ')}) on every node of ${fed.sites.map((s) => s.domain).join(', ')}`);
      // The deployment runs on; its progress is followed through the view below.
      deploying = fed
        .deploy(name, DEMO_COMMAND, {
          timeoutMs: timeoutMs,
          links,
          onEvent: (e) => {
            if (!o.tty && e.message) o.log(`  ${e.site ? `${e.site}: ` : ''}${e.message}`);
          },
        })
        .catch((err: unknown) => {
          say(`deploy: ${(err as Error).message.split('\n')[0]}`);
          return undefined;
        });
    }
    let deployDone = false;
    let announced = false;
    const expected = fed.sites.reduce((n, s) => n + s.nodes.length, 0);
    const deadline = Date.now() + timeoutMs;
    view.start();
    for (;;) {
      if (stopRequested()) return await (stopRequested() as Promise<number>);
      const status = await collectStatus(fed, name);
      const r = readiness(status, expected);
      const line = statusLine(status);
      view.show(renderStatus(status, title(fed, f.once)), line, line.slice(25).replace(/; e\.g\. .*$/, ''));
      if (r.ready && !announced) {
        announced = true;
        if (status.deployment?.sliceUrn) await fed.prepareMember(status.deployment.sliceUrn).catch(() => undefined);
        const msg = `ready: the service runs in all ${counted(expected, 'sliver')} on ${counted(fed.sites.length, 'site')}, ${((Date.now() - started) / 1000).toFixed(1)} s after start`;
        o.log(msg);
        // Printed once, whole (above the view on a terminal): the commands must stay usable as printed.
        if (!f.once) say(`${msg}\n${usageText(fed, status.deployment, name, profilesOf(fed), notes)}`);
      }
      if (f.once && r.ready) {
        view.stop();
        if (!o.tty) say(renderStatus(status, `fedlab up: ${fed.dir}`).join('\n'));
        say(
          `ready: the service runs in all ${counted(expected, 'sliver')} on ${counted(fed.sites.length, 'site')}, ${((Date.now() - started) / 1000).toFixed(1)} s after start`,
        );
        say(usageText(fed, status.deployment, name, profilesOf(fed), notes));
        return await (stopping ??= shutdown(0, '--once'));
      }
      if (f.once && Date.now() > deadline) {
        view.stop();
        say(`not ready after ${Math.round(timeoutMs / 1000)} s:\n  ${r.problems.join('\n  ')}`);
        return await (stopping ??= shutdown(EXIT_FAILURE, 'not ready in time'));
      }
      // Wake up early when the deploy stream ends (its final state), not again after that.
      await Promise.race([sleep(intervalMs), deployDone ? new Promise(() => {}) : deploying.then(() => (deployDone = true))]);
    }
  } catch (err) {
    if (!stopping) {
      view.stop();
      o.error(`fedlab: ${(err as Error).message}`);
      stopping = shutdown(err instanceof CliExit ? err.exitCode : err instanceof InvalidArgumentError ? 2 : EXIT_FAILURE, 'it failed');
    }
    return await stopping;
  } finally {
    signals.release();
    process.off('uncaughtException', onFatal);
    process.off('unhandledRejection', onFatal);
  }
}

/** Registers `fedlab up`. */
export function registerUpCommand(program: Command, context: ProgramContext = {}): void {
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
    .option(
      '--keep',
      'adopt the deployments and slices an earlier run that did not stop left (shown, deleted at the stop) instead of deleting them',
    )
    .addOption(
      new Option('--driver <kind>', 'sliver driver of the node managers').choices(['auto', 'container', 'process']).default('auto'),
    )
    .action(
      action(async (f: UpFlags) => {
        const code = await runUp(f, process.stdout, process.stderr, context);
        if (code !== 0) process.exitCode = code;
      }),
    );
}
