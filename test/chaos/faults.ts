// Faults on a local federation's processes (cli/up: every party a `fedlab serve` child): kill -9 and a
// restart on the same config and data, SIGSTOP and SIGCONT; and healing (every party running and not
// stopped) before the federation is judged.
import type { LocalFederation } from '../../cli/up/federation.js';
import type { ServiceProcess } from '../../cli/up/processes.js';
import { sleep } from '../../services/core/timing.js';
import type { Party } from './schedule.js';

/** Kills, stops and brings back the parties of a federation. */
export class Faults {
  private readonly stopped = new Set<Party>();

  constructor(private readonly fed: LocalFederation) {}

  /** Every party: the slice authority, each site's MA and each node manager. */
  parties(): Party[] {
    return ['sa', ...this.fed.sites.flatMap((s) => [`${s.domain}/ma`, ...s.nodes.map((n) => `${s.domain}/${n.name}`)])];
  }

  private proc(party: Party): ServiceProcess {
    if (party === 'sa') return this.fed.sa as ServiceProcess;
    const [domain, name] = party.split('/');
    const site = this.fed.sites.find((s) => s.domain === domain);
    const proc = name === 'ma' ? site?.ma : site?.nodes.find((n) => n.name === name)?.proc;
    if (!proc) throw new Error(`no party ${party}`);
    return proc;
  }

  private async start(party: Party): Promise<void> {
    if (party === 'sa') await this.fed.restartSliceAuthority();
    else await this.proc(party).start();
  }

  /** kill -9, then a restart `downMs` later. */
  async kill(party: Party, downMs: number): Promise<void> {
    await this.proc(party).kill9();
    await sleep(downMs);
    await this.start(party);
  }

  /** SIGSTOP, then SIGCONT `forMs` later. */
  async stop(party: Party, forMs: number): Promise<void> {
    const pid = this.proc(party).pid;
    if (pid === undefined) return;
    process.kill(pid, 'SIGSTOP');
    this.stopped.add(party);
    await sleep(forMs);
    this.cont(party);
  }

  private cont(party: Party): void {
    if (!this.stopped.delete(party)) return;
    const pid = this.proc(party).pid;
    if (pid !== undefined) process.kill(pid, 'SIGCONT');
  }

  /** Every party continued and running again (what a round leaves stopped or dead). */
  async heal(): Promise<string[]> {
    const healed: string[] = [];
    for (const p of [...this.stopped]) {
      this.cont(p);
      healed.push(`SIGCONT ${p}`);
    }
    for (const p of this.parties()) {
      if (this.proc(p).running()) continue;
      await this.start(p);
      healed.push(`restarted ${p}`);
    }
    return healed;
  }
}
