// PTY mode of Exec, through the sliver manager (the internal API an SSH server uses; the gRPC Exec has no
// terminal): `sh` runs on a terminal in a sliver, its prompt is read, a resize shows in `stty size`, Ctrl-C
// interrupts its foreground command, a signal reaches a trapping command, the exit status comes back, and a
// cancelled terminal leaves none of its processes behind. With the container driver (root) in a runc sliver,
// and with the process driver (no isolation) anywhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecChunk, ExecSpec } from '../../services/node-manager/drivers/driver.js';
import { TerminalControl } from '../../services/node-manager/drivers/terminal-control.js';
import { canContain, cannotContainReason, collectExec, createSliver, startNodeManager, type NmHarness } from '../helpers/node-manager.js';
import { waitFor } from '../helpers/servers.js';

if (!canContain) console.log(`skipping the container PTY tests: ${cannotContainReason}`);

/** A running terminal: everything it printed so far, and its exit once it ends. */
interface Terminal {
  readonly control: TerminalControl;
  readonly abort: AbortController;
  output(): string;
  /** Waits until the output since `from` matches. */
  until(re: RegExp, from?: number, ms?: number): Promise<void>;
  readonly exit: Promise<Extract<ExecChunk, { kind: 'exit' }> | undefined>;
}

async function openTerminal(h: NmHarness, urn: string, argv: string[], env: Record<string, string> = {}): Promise<Terminal> {
  const control = new TerminalControl();
  const abort = new AbortController();
  const spec: ExecSpec = { argv, env, timeoutMs: 60_000, maxOutputBytes: 1 << 20, tty: { rows: 24, cols: 80, control } };
  const chunks = await h.nm.slivers.exec(urn, spec, abort.signal);
  let out = '';
  // How the terminal ended, for a failed wait's message (a wait that times out on an ended terminal says so).
  let ended = 'still running';
  const exit = (async () => {
    let last: Extract<ExecChunk, { kind: 'exit' }> | undefined;
    try {
      for await (const c of chunks) {
        if (c.kind === 'exit') last = c;
        else out += c.data.toString();
      }
    } catch (err) {
      ended = `failed: ${(err as Error).message}`;
      throw err;
    }
    ended = `ended: ${JSON.stringify(last)}`;
    return last;
  })();
  // Awaited by the test; this only keeps an early failure from surfacing as an unhandled rejection first.
  exit.catch(() => undefined);
  return {
    control,
    abort,
    output: () => out,
    until: (re, from = 0, ms = 10_000) =>
      // The output in the message is the output when the wait gave up, not when it began.
      waitFor(() => re.test(out.slice(from)), ms, `${re}`).catch((err: unknown) => {
        throw new Error(`${(err as Error).message} in the terminal's output (${ended}): ${JSON.stringify(out.slice(-300))}`);
      }),
    exit,
  };
}

/** Types `command` at the prompt until its output matches `re` (each answer waited for, the prompt back in between). */
async function askUntil(t: Terminal, command: string, re: RegExp, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const mark = t.output().length;
    t.control.write(`${command}\r`);
    await t.until(/\r\npty\$ $/, mark);
    if (re.test(t.output().slice(mark))) return;
    if (Date.now() >= end) throw new Error(`${command} never printed ${re}: ${JSON.stringify(t.output().slice(mark))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function ptyTests(driver: 'container' | 'process', name: string) {
  let h: NmHarness;
  let urn: string;
  const run = async (script: string) =>
    collectExec(h.client().exec({ sliverUrn: urn, argv: ['sh', '-c', script], env: {}, timeoutMs: 0 }, { chain: h.parties.ownerChain }));

  beforeAll(async () => {
    h = await startNodeManager({ driver });
    urn = (await createSliver(h, name, { sliceUrn: `urn:fedlab:plc.test:slice:${name}` })).urn;
  });
  afterAll(async () => {
    await h?.destroy();
  });

  it('runs sh on a terminal: prompt, stty size, a resize, Ctrl-C, and the exit status', async () => {
    const t = await openTerminal(h, urn, ['sh', '-i'], { PS1: 'pty$ ' });
    await t.until(/pty\$ /);
    t.control.write('stty size; tty; echo "TERM=$TERM"\r');
    await t.until(/24 80\r\n/);
    await t.until(/TERM=xterm\r\n/);
    // A terminal of the sliver's own (the container's devpts), not the host's.
    if (driver === 'container') expect(t.output()).toMatch(/\/dev\/pts\/\d+\r\n/);

    // The shell is back at its prompt (its line editor owns the terminal again) before the window changes.
    await t.until(/TERM=xterm\r\npty\$ $/);
    let mark = t.output().length;
    t.control.resize(40, 132);
    // runc applies a resize on its own time (SIGWINCH to runc, which then resizes the sliver's terminal), as
    // a remote terminal does: ask until the shell sees it.
    await askUntil(t, 'stty size', /^40 132\r$/m);

    mark = t.output().length;
    t.control.write('echo sleeping; sleep 100\r');
    // The shell has read the line and runs it (input typed before that would be flushed by the ^C).
    await t.until(/sleeping\r\n/, mark);
    await new Promise((r) => setTimeout(r, 300));
    t.control.write('\x03');
    // SIGINT from the terminal's own line discipline ends the foreground sleep (status 130); the prompt comes back.
    await t.until(/\^C\r\n(\r\n)?pty\$ /, mark);
    t.control.write('echo "after=$?"\r');
    await t.until(/after=130\r\n/, mark);

    t.control.write('exit 7\r');
    const exit = await t.exit;
    expect(exit).toMatchObject({ kind: 'exit', code: 7, timedOut: false });
    expect(t.control.closed).toBe(true);
  });

  it('delivers a signal to the command and returns what it exits with', async () => {
    const t = await openTerminal(h, urn, ['sh', '-c', 'trap "echo got-TERM; exit 5" TERM; echo ready; while :; do sleep 0.2; done']);
    await t.until(/ready\r\n/);
    t.control.signal('TERM');
    await t.until(/got-TERM/);
    expect(await t.exit).toMatchObject({ kind: 'exit', code: 5 });
    // Out of the list: refused before it reaches anything.
    expect(() => t.control.signal('SIGSYS')).toThrow(/cannot be sent/);
    expect(() => t.control.resize(0, 80)).toThrow(/rows must be a whole number/);
  });

  it('a cancelled terminal leaves none of its processes, background ones included', async () => {
    const t = await openTerminal(h, urn, ['sh', '-c', 'sleep 301 & sleep 302 & echo started; wait']);
    await t.until(/started/);
    t.abort.abort();
    const exit = await t.exit;
    expect(exit?.kind).toBe('exit');
    await waitFor(
      async () => !/sleep 30[12]/.test((await run('cat /proc/[0-9]*/cmdline | tr "\\0" " "')).stdout),
      5_000,
      "the terminal's sleeps to go",
    );
  });
}

describe('PTY mode of Exec with the process driver', () => ptyTests('process', 'pty-proc'));
describe.skipIf(!canContain)('PTY mode of Exec in a runc sliver', () => ptyTests('container', 'pty-runc'));
