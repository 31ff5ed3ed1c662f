// Helpers that tests use to start real servers over mTLS on port 0 and to capture their log lines.
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { until } from '../../services/core/timing.js';

/** A logger whose JSON lines are collected in memory (for asserting on per-call log lines). */
export function capturingLogger(level: 'info' | 'debug' = 'info'): { log: Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const log = pino({ level }, dest);
  return {
    log,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** Waits until `predicate` holds, polling every 10 ms, or throws after `ms`. */
export function waitFor(predicate: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  return until(predicate, ms, what, 10);
}
