/**
 * Structured JSON logs (one object per line). Credentials, keys and tokens are
 * redacted by path wherever they might appear, and code logs only hashes or
 * jtis of credentials, never the compact JWS itself.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/** Options of {@link createLogger}. */
export interface LogOptions {
  /** Service name added to every line (e.g. "ma:plc.test"). */
  readonly name?: string;
  readonly level?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** Where lines go; stdout by default. */
  readonly destination?: DestinationStream;
}

const REDACT = [
  'key',
  'privateKey',
  'private_key',
  'token',
  'credential',
  'chain',
  '*.key',
  '*.privateKey',
  '*.private_key',
  '*.token',
  '*.credential',
  '*.chain',
  'req.headers.authorization',
];

/**
 * The process's default log destination: asynchronous and buffered — lines go out in writes of
 * about 4 KiB, and at least every 100 ms, and what is left is flushed on exit — so a busy server
 * makes one write system call per few dozen lines, not one per line (a per-call line's write cost
 * more than the rest of the call's logging).
 */
export function logDestination(dest: number | string = 1): DestinationStream {
  return pino.destination({ dest, sync: false, minLength: 4096, periodicFlush: 100 });
}

/** Creates the process's logger. */
export function createLogger(options: LogOptions = {}): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      redact: { paths: REDACT, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? logDestination(1),
  );
}

/** A logger that drops everything (for tests and tools that print their own output). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
