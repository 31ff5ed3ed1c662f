/** Progress of `fedlab deploy`: a live table redrawn in place on a terminal, plain lines otherwise. */
import type { DeploymentTarget, DeployResponse } from '../../../services/generated/fedlab/v1/service_provider.js';
import { printable, printableText, writeOut } from '../../printable.js';
import { shortName, stateName, targetTable } from './deployment-view.js';

/** Renders a deploy stream's events. */
export class DeployProgress {
  private drawn = 0;
  private targets: DeploymentTarget[] = [];
  private status = '';

  constructor(private readonly live: boolean) {}

  /** Shows one event. */
  event(e: DeployResponse): void {
    if (e.deployment) this.targets = e.deployment.targets;
    this.status = printable(`${e.deploymentName}: ${stateName(e.state)}${e.message ? ` — ${e.message}` : ''}`);
    if (!this.live) {
      const where = e.sliverUrn ? ` [${e.site}] ${shortName(e.sliverUrn)}` : '';
      const bad = e.status && e.status.code !== 0 ? ` (code ${e.status.code}: ${e.status.reason})` : '';
      writeOut(`${printable(`${new Date(e.time ?? Date.now()).toISOString()} ${stateName(e.state)}${where}: ${e.message}${bad}`)}\n`);
      return;
    }
    if (e.sliverUrn && !e.deployment) {
      // Keep the table current between snapshots from what the event says.
      const t = this.targets.find((x) => x.sliverUrn === e.sliverUrn);
      if (t && e.message) t.lastOutput = [...t.lastOutput.slice(-5), `» ${e.message}`];
    }
    this.draw();
  }

  private draw(): void {
    const text = `${this.status}\n${targetTable(this.targets)}\n`;
    // The only escapes on the screen are ours (cursor up, clear); what the provider sent is printable.
    const up = this.drawn > 0 ? `\x1b[${this.drawn}A\x1b[J` : '';
    process.stdout.write(up + printableText(text));
    this.drawn = text.split('\n').length - 1;
  }
}
