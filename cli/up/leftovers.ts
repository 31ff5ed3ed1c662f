/**
 * What a `fedlab up` that did not stop (kill -9, a crash, a closed terminal before this version) left
 * in its folder: service processes still running under PID 1, and deployments and slices still held
 * on the sites. A new run lists them, stops the processes (they cannot be adopted: their output went
 * to the run that died), and then either deletes the deployments and slices through the provider and
 * the slice authority, or — with `--keep` — adopts them and shows them.
 */
import { readFileSync } from 'node:fs';
import { DeploymentState, type Deployment } from '../../services/generated/fedlab/v1/service_provider.js';
import { SliceState, type Slice } from '../../services/generated/fedlab/v1/slice_authority.js';
import { sleep } from '../../services/core/timing.js';
import type { LocalFederation } from './federation.js';

/** When a process started (clock ticks since boot, /proc/PID/stat field 22), or undefined when it is gone. */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields are counted after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const t = Number(fields[19]);
    return Number.isFinite(t) ? t : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the `fedlab up` recorded as `{pid, started}` still runs (the same process, not a reused id). */
export function upAlive(up: { pid: number; started: number } | undefined): boolean {
  if (!up || up.pid === process.pid) return false;
  return processStartTime(up.pid) === up.started;
}

/** The command line of a process, for the list of leftovers. */
function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(-4).join(' ');
  } catch {
    return '?';
  }
}

/**
 * Stops leftover service processes (each the leader of its own process group): SIGTERM to the group,
 * then SIGKILL to what is left after `graceMs`. Returns a line per process.
 */
export async function stopLeftoverProcesses(pids: readonly number[], graceMs = 5000): Promise<string[]> {
  const lines = pids.map((pid) => `process ${pid} (${commandOf(pid)})`);
  const signal = (pid: number, sig: NodeJS.Signals): void => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        // Gone already.
      }
    }
  };
  for (const pid of pids) signal(pid, 'SIGTERM');
  const alive = (pid: number): boolean => processStartTime(pid) !== undefined && !isZombie(pid);
  const end = Date.now() + graceMs;
  while (pids.some(alive) && Date.now() < end) await sleep(100);
  for (const pid of pids.filter(alive)) signal(pid, 'SIGKILL');
  return lines;
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** What the federation holds: every deployment not DELETED and every slice not DELETED or EXPIRED. */
export interface Holdings {
  readonly deployments: readonly Deployment[];
  readonly slices: readonly Slice[];
}

/** Every live deployment of the provider and slice of the slice authority (as the provider). */
export async function listHoldings(fed: LocalFederation, deadlineMs = 5000): Promise<Holdings> {
  const deployments: Deployment[] = [];
  const slices: Slice[] = [];
  if (fed.sp?.running()) {
    const sp = fed.spClient(fed.homePaths.operator, deadlineMs);
    try {
      let token = '';
      do {
        const page = await sp.listDeployments({ pageSize: 100, pageToken: token, state: DeploymentState.DEPLOYMENT_STATE_UNSPECIFIED });
        deployments.push(...page.deployments);
        token = page.nextPageToken;
      } while (token);
    } finally {
      sp.close();
    }
  }
  if (fed.sa?.running()) {
    const sa = fed.saClient(fed.homePaths.sp, deadlineMs);
    try {
      let token = '';
      do {
        const page = await sa.listSlices({ pageSize: 100, pageToken: token, state: SliceState.SLICE_STATE_UNSPECIFIED });
        slices.push(...page.slices);
        token = page.nextPageToken;
      } while (token);
    } finally {
      sa.close();
    }
  }
  return { deployments, slices };
}

/** One line per holding (a deployment's slice on its line), for the list of leftovers. */
export function holdingLines(h: Holdings): string[] {
  const ofDeployments = new Set(h.deployments.map((d) => d.sliceUrn));
  return [
    ...h.deployments.map(
      (d) => `deployment ${d.name} (${DeploymentState[d.state].replace('DEPLOYMENT_STATE_', '')}, slice ${d.sliceUrn || '-'})`,
    ),
    ...h.slices
      .filter((s) => !ofDeployments.has(s.urn))
      .map(
        (s) =>
          `slice ${s.urn} (${SliceState[s.state].replace('SLICE_STATE_', '')}, ${s.slivers.length} sliver${s.slivers.length === 1 ? '' : 's'})`,
      ),
  ];
}

/**
 * Deletes every deployment (with its slice) through the provider, then every slice still live through
 * the slice authority; waits until each is gone or `timeoutMs` passed. Returns what could not be deleted.
 * `abort` (a forced stop) ends the waiting early.
 */
export async function deleteHoldings(fed: LocalFederation, h: Holdings, timeoutMs: number, abort?: () => boolean): Promise<string[]> {
  const failed: string[] = [];
  const end = Date.now() + timeoutMs;
  for (const d of h.deployments) {
    if (abort?.()) break;
    const ok = await fed.deleteDeployment(d.name, Math.max(1000, end - Date.now()), abort);
    if (!ok) failed.push(`deployment ${d.name}`);
  }
  const viaDeployments = new Set(h.deployments.map((d) => d.sliceUrn));
  const rest = h.slices.filter((s) => !viaDeployments.has(s.urn) || failed.length > 0);
  if (rest.length === 0 || abort?.() || !fed.sa?.running()) return [...failed, ...(abort?.() ? rest.map((s) => `slice ${s.urn}`) : [])];
  const sa = fed.saClient(fed.homePaths.sp, Math.max(2000, end - Date.now()));
  try {
    for (const s of rest) {
      let gone = false;
      while (!gone && !abort?.() && Date.now() < end) {
        try {
          const res = await sa.deleteSlice({ sliceUrn: s.urn });
          gone = res.slice?.state === SliceState.SLICE_STATE_DELETED;
        } catch {
          // NOT_FOUND or a site that does not answer yet: asked again until the time is up.
          const now = await sa.getSlice({ sliceUrn: s.urn }).catch(() => undefined);
          gone = !now || now.slice?.state === SliceState.SLICE_STATE_DELETED || now.slice?.state === SliceState.SLICE_STATE_EXPIRED;
        }
        if (!gone) await sleep(500);
      }
      if (!gone) failed.push(`slice ${s.urn}`);
    }
  } finally {
    sa.close();
  }
  return failed;
}
