// Issue 15, item 5: the CLI's live views and printouts carry no control character that came from a
// sliver, a node or a server. Caret notation (as `cat -v`) for C0, DEL and C1; JSON exact but with DEL
// and C1 escaped too. The live tables of `fedlab deploy`, `fedlab up` and `fedlab slice create` write
// their own cursor escapes and nothing else.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DeployProgress } from '../../cli/commands/provider/deploy-progress.js';
import { targetTable } from '../../cli/commands/provider/deployment-view.js';
import { CreateProgress } from '../../cli/commands/slice/create-progress.js';
import { printable, printableJson, printableLine, printableText } from '../../cli/printable.js';
import { renderStatus, statusLine, type FederationStatus } from '../../cli/up/status.js';
import { SliceState, WatchSliceResponse } from '../../services/generated/fedlab/v1/slice_authority.js';
import {
  Deployment,
  DeploymentState,
  DeployResponse,
  ServiceState,
  type DeploymentTarget,
} from '../../services/generated/fedlab/v1/service_provider.js';

// What a hostile sliver (or server) prints: clear screen, set the title, C1 CSI, DEL, BS, CR, a line feed.
const NASTY = 'A\x1b[2J\x1b]0;pwned\x07B\u009b31mC\x7fD\bE\rF\nG';
const ANY_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

function target(over: Partial<DeploymentTarget> = {}): DeploymentTarget {
  return {
    sliverUrn: `urn:fedlab:a.test:sliver:s1`,
    nodeUrn: 'urn:fedlab:a.test:node:n1',
    site: 'a.test',
    stepsDone: 1,
    status: { code: 13, reason: `boom ${NASTY}` },
    serviceState: ServiceState.SERVICE_STATE_FAILED,
    restarts: 2,
    lastOutput: ['fine', NASTY],
    lastExit: `exit ${NASTY}`,
    nextRestartAt: undefined,
    nodeEndpoint: '127.0.0.1:1',
    ...over,
  };
}

/** Captures what is written to standard output while `fn` runs. */
function captured(fn: () => void): string {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  });
  try {
    fn();
  } finally {
    spy.mockRestore();
  }
  return out;
}

afterEach(() => vi.restoreAllMocks());

describe('printable text', () => {
  it('shows every C0, DEL and C1 character in caret notation', () => {
    expect(printable('\x00\x07\x08\x09\x0a\x0d\x1b\x1f')).toBe('^@^G^H^I^J^M^[^_');
    expect(printable('\x7f')).toBe('^?');
    expect(printable('\u0080\u009b\u009f')).toBe('M-^@M-^[M-^_');
    expect(printable(NASTY)).toBe('A^[[2J^[]0;pwned^GBM-^[31mC^?D^HE^MF^JG');
    // Printable characters (other scripts and emoji too) are unchanged.
    expect(printable('héllo — 世界 ✓ 🙂 \u00a0')).toBe('héllo — 世界 ✓ 🙂 \u00a0');
    for (let c = 0; c < 0xa0; c++) {
      const ch = String.fromCharCode(c);
      const shown = printable(ch);
      if (c < 0x20 || c >= 0x7f) expect(shown, `U+${c.toString(16)}`).not.toMatch(ANY_CONTROL);
      else expect(shown).toBe(ch);
    }
  });

  it('keeps tabs in a line, and tabs and line feeds in text', () => {
    expect(printableLine('a\tb\nc\x1b')).toBe('a\tb^Jc^[');
    expect(printableText('a\tb\nc\x1b\r')).toBe('a\tb\nc^[^M');
  });

  it('JSON escapes DEL and C1 as well, and parses back to the same text', () => {
    const json = printableJson({ line: NASTY }, 2);
    expect(json).not.toMatch(ANY_CONTROL);
    expect(json).toContain('\\u009b');
    expect(json).toContain('\\u007f');
    expect((JSON.parse(json) as { line: string }).line).toBe(NASTY);
  });
});

describe('views of what servers sent', () => {
  it('the per-sliver table (deployment show, deploy) has printable cells on one line each', () => {
    const table = targetTable([target()]);
    expect(table).not.toMatch(ANY_CONTROL);
    expect(table.split('\n')).toHaveLength(2);
    expect(table).toContain('A^[[2J^[]0;pwned^GBM-^[31mC^?D^HE^MF^JG');
  });

  it('the live deploy table writes only its own cursor escapes', () => {
    const progress = new DeployProgress(true);
    const snapshot = Deployment.fromPartial({ name: 'd', state: DeploymentState.DEPLOYMENT_STATE_RUNNING_STEPS, targets: [target()] });
    const out = captured(() => {
      progress.event(DeployResponse.fromPartial({ deploymentName: `d${NASTY}`, message: NASTY, deployment: snapshot }));
      progress.event(DeployResponse.fromPartial({ deploymentName: 'd', sliverUrn: target().sliverUrn, site: 'a.test', message: NASTY }));
      progress.event(DeployResponse.fromPartial({ deploymentName: 'd', message: `done ${NASTY}` }));
    });
    // Our own: move up N lines, clear to the end of the screen; nothing else may act on the terminal.
    const ours = /\x1b\[\d+A\x1b\[J/g;
    expect(out.match(ours)).toHaveLength(2);
    expect(out.replace(ours, '')).not.toMatch(ANY_CONTROL);
    expect(out).toContain('^[]0;pwned^G');
  });

  it('the plain deploy lines are printable, one per event', () => {
    const out = captured(() => {
      const progress = new DeployProgress(false);
      progress.event(DeployResponse.fromPartial({ deploymentName: 'd', sliverUrn: target().sliverUrn, site: NASTY, message: NASTY }));
      progress.event(DeployResponse.fromPartial({ deploymentName: 'd', message: NASTY, status: { code: 2, reason: NASTY } }));
    });
    expect(out).not.toMatch(ANY_CONTROL);
    expect(out.split('\n').filter(Boolean)).toHaveLength(2);
  });

  it("fedlab up's live table and status line are printable", () => {
    const status: FederationStatus = {
      at: new Date(),
      sites: [
        { domain: 'a.test', style: 'planetlab', address: '127.0.0.1:1', up: 1, total: 1 },
        { domain: 'b.test', style: 'emulab', address: '127.0.0.1:2', up: 0, total: 1, error: `refused ${NASTY}` },
      ],
      deployment: Deployment.fromPartial({
        name: 'demo',
        sliceUrn: 'urn:fedlab:a.test:slice:demo',
        state: DeploymentState.DEPLOYMENT_STATE_PARTIAL,
        error: NASTY,
        targets: [target({ serviceState: ServiceState.SERVICE_STATE_RUNNING })],
      }),
      errors: [`slice authority: ${NASTY}`],
    };
    const lines = renderStatus(status, 'fedlab up');
    for (const l of lines) expect(l).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(lines.join('\n')).toContain('^[]0;pwned^G');
    expect(statusLine(status)).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  });

  it('the slice create bar writes only its own escapes', () => {
    let out = '';
    const sink = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream;
    const bar = new CreateProgress(true, sink);
    bar.expect(2);
    bar.event(
      WatchSliceResponse.fromPartial({
        state: SliceState.SLICE_STATE_PENDING,
        site: NASTY,
        nodeUrn: NASTY,
        message: NASTY,
        status: { code: 13, reason: 'x' },
      }),
    );
    bar.event(WatchSliceResponse.fromPartial({ state: SliceState.SLICE_STATE_READY, message: NASTY }));
    bar.end();
    const ours = /\r\x1b\[2K/g;
    expect(out.replace(ours, '')).not.toMatch(ANY_CONTROL);
    expect(out).toContain('^[[2J');
  });
});
