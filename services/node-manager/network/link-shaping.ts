/**
 * Egress shaping of link interfaces with `tc`: tbf at the link's bandwidth;
 * when a link asks for delay or loss, htb at the bandwidth (if any) with netem
 * under it, or netem alone — and netem only where the kernel has it, probed
 * once on a scratch namespace (never assumed). What a plan applies is reported
 * back as text (`InterfaceWiring.applied`). `tc` (and `bridge`) run by absolute path, with a
 * fixed environment and a deadline, failures typed like the other network
 * tools' (net-command.ts).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { DeadlineExceededError, FailedPreconditionError } from '../../core/errors.js';
import { NetworkCommandError, type NetCommands } from './net-command.js';

/** What a link asks of an interface's egress. */
export interface Shaping {
  readonly bandwidthKbps: number;
  readonly delayMs: number;
  readonly lossPercent: number;
}

/** The qdiscs of one interface: `tc` argument lists (after `-n <netns>`), and how they read. */
export interface ShapingPlan {
  readonly commands: readonly (readonly string[])[];
  readonly applied: readonly string[];
}

/** Bytes of burst: 10 ms of traffic at the rate, at least a few full frames (coarse timers keep the rate). */
function burstOf(kbps: number): number {
  return Math.max(16_000, Math.ceil((kbps * 1000) / 8 / 100));
}

/** The qdiscs for `s` on `dev`; FAILED_PRECONDITION naming the link when it asks for netem and there is none. */
export function shapingPlan(dev: string, s: Shaping, netem: boolean, link: string): ShapingPlan {
  const rate = s.bandwidthKbps;
  const wantsNetem = s.delayMs > 0 || s.lossPercent > 0;
  if (wantsNetem && !netem)
    throw new FailedPreconditionError(
      `link ${link} asks for delay or loss, but this node's kernel has no netem (sch_netem); ask for bandwidth only or use another node`,
      { rule: 'netem', link },
    );
  const netemArgs = [...(s.delayMs > 0 ? ['delay', `${s.delayMs}ms`] : []), ...(s.lossPercent > 0 ? ['loss', `${s.lossPercent}%`] : [])];
  if (rate > 0 && !wantsNetem) {
    const tbf = ['tbf', 'rate', `${rate}kbit`, 'burst', String(burstOf(rate)), 'latency', '50ms'];
    return { commands: [['qdisc', 'replace', 'dev', dev, 'root', ...tbf]], applied: [tbf.join(' ')] };
  }
  if (rate > 0) {
    return {
      commands: [
        ['qdisc', 'replace', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '1'],
        ['class', 'replace', 'dev', dev, 'parent', '1:', 'classid', '1:1', 'htb', 'rate', `${rate}kbit`, 'ceil', `${rate}kbit`],
        ['qdisc', 'replace', 'dev', dev, 'parent', '1:1', 'handle', '10:', 'netem', ...netemArgs],
      ],
      applied: [`htb rate ${rate}kbit`, ['netem', ...netemArgs].join(' ')],
    };
  }
  if (wantsNetem)
    return { commands: [['qdisc', 'replace', 'dev', dev, 'root', 'netem', ...netemArgs]], applied: [['netem', ...netemArgs].join(' ')] };
  return { commands: [], applied: [] };
}

/** Runs `tc` and `bridge` (iproute2) with a deadline each. */
export class TcCommands {
  private readonly paths = new Map<string, string | undefined>();

  constructor(readonly timeoutMs = 5_000) {}

  /** `tc <args>`; resolves with its standard output. */
  tc(args: readonly string[]): Promise<string> {
    return this.run('tc', args);
  }

  /** `bridge <args>` (VXLAN forwarding entries); resolves with its standard output. */
  bridge(args: readonly string[]): Promise<string> {
    return this.run('bridge', args);
  }

  private run(tool: 'tc' | 'bridge', args: readonly string[]): Promise<string> {
    if (!this.paths.has(tool))
      this.paths.set(
        tool,
        ['/usr/sbin', '/sbin', '/usr/bin', '/bin'].map((d) => `${d}/${tool}`).find((p) => existsSync(p)),
      );
    const file = this.paths.get(tool);
    if (!file)
      return Promise.reject(new FailedPreconditionError(`links need ${tool}, which is missing; install it: apt-get install iproute2`));
    const shown = `${tool} ${args.join(' ')}`.slice(0, 300);
    return new Promise((resolve, reject) => {
      execFile(
        file,
        [...args],
        { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' }, timeout: this.timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' },
        (err, stdout, stderr) => {
          if (!err) return resolve(stdout);
          const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string };
          if (e.killed || e.signal === 'SIGKILL')
            reject(new DeadlineExceededError(`${shown} did not finish within ${this.timeoutMs} ms`, { command: shown }));
          else reject(new NetworkCommandError(shown, stderr || e.message, e.code ?? undefined));
        },
      );
    });
  }

  /** Applies a plan to a device inside a namespace (the root qdisc replaced, so a repeat is harmless). */
  async apply(netns: string, plan: ShapingPlan): Promise<void> {
    for (const c of plan.commands) await this.tc(['-n', netns, ...c]);
  }

  /** Removes a device's root qdisc inside a namespace (none there is fine). */
  async clear(netns: string, dev: string): Promise<void> {
    await this.tc(['-n', netns, 'qdisc', 'del', 'dev', dev, 'root']).catch(() => '');
  }
}

/** Whether the kernel has netem: tried on the loopback of a scratch namespace, removed right after. */
export async function probeNetem(run: NetCommands, tc: TcCommands): Promise<boolean> {
  const ns = `flprobe-${randomBytes(4).toString('hex')}`;
  try {
    await run.ip(['netns', 'add', ns]);
  } catch {
    return false;
  }
  try {
    await tc.tc(['-n', ns, 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']);
    return true;
  } catch {
    return false;
  } finally {
    await run.ip(['netns', 'del', ns]).catch(() => '');
  }
}
