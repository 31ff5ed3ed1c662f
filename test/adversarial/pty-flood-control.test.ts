// The backpressure of a terminal's control channel, without a terminal: `write` says to wait while the
// driver's queue (or what was typed before the command started) is over its bound, the caller is let go on
// when the driver drained it or the command ended, and a caller that writes on regardless is refused.
import { describe, expect, it } from 'vitest';
import { TERMINAL_INPUT_HIGH_WATER, TerminalControl, type TerminalInput } from '../../services/node-manager/drivers/terminal-control.js';

describe('terminal input backpressure', () => {
  it('says to wait while the driver is over its bound, and lets the caller go on when it drained', () => {
    const c = new TerminalControl();
    let full = false;
    const got: TerminalInput[] = [];
    c.attach((i) => {
      got.push(i);
      return !full;
    });
    expect(c.write('a')).toBe(true);
    full = true;
    expect(c.write('b')).toBe(false);
    let resumed = 0;
    c.onceDrained(() => resumed++);
    // Resizes and signals are not input: they neither fill nor drain.
    c.resize(30, 100);
    expect(resumed).toBe(0);
    full = false;
    c.drained();
    expect(resumed).toBe(1);
    // Not full: called at once.
    c.onceDrained(() => resumed++);
    expect(resumed).toBe(2);
    expect(got.map((i) => i.kind)).toEqual(['data', 'data', 'resize']);
  });

  it('says to wait before the command starts once more than the bound was typed, and goes on after it attached', () => {
    const c = new TerminalControl();
    expect(c.write(Buffer.alloc(TERMINAL_INPUT_HIGH_WATER))).toBe(true);
    expect(c.write('x')).toBe(false);
    let resumed = false;
    c.onceDrained(() => (resumed = true));
    let bytes = 0;
    c.attach((i) => {
      if (i.kind === 'data') bytes += i.data.length;
      return true;
    });
    expect(bytes).toBe(TERMINAL_INPUT_HIGH_WATER + 1);
    expect(resumed).toBe(true);
  });

  it('lets a waiting caller go on when the command ended', () => {
    const c = new TerminalControl();
    const detach = c.attach(() => false);
    expect(c.write('x')).toBe(false);
    let resumed = false;
    c.onceDrained(() => (resumed = true));
    detach();
    expect(resumed).toBe(true);
    expect(c.closed).toBe(true);
  });

  it('refuses a caller that writes a megabyte more after it was told to wait', () => {
    const c = new TerminalControl();
    let taken = 0;
    c.attach((i) => {
      if (i.kind === 'data') taken += i.data.length;
      return false;
    });
    const block = Buffer.alloc(64 * 1024);
    expect(() => {
      for (let i = 0; i < 32; i++) c.write(block);
    }).toThrow(/typed while the terminal's command was not reading/);
    expect(taken).toBeLessThanOrEqual(64 * 1024 + 1024 * 1024);
  });
});
