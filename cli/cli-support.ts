/**
 * What every `fedlab` command shares: turning errors into a one-line message
 * on stderr and an exit code, and printing JSON for `--json`.
 *
 * Exit codes: 0 success; 1 the operation ran and said no (e.g. an invalid
 * credential in `cred verify`, a refused call); 2 bad input or usage (a
 * malformed URN, a missing file, an unknown flag). Bad input changes nothing.
 */
import { FedlabError, InvalidArgumentError } from '../services/core/errors.js';

/** Exit code for bad input or usage. */
export const EXIT_USAGE = 2;
/** Exit code for an operation that ran and failed or refused. */
export const EXIT_FAILURE = 1;

/** An error that carries its own exit code and message (e.g. `cred verify` → 1). */
export class CliExit extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** Maps an error to the CLI's exit code. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CliExit) return err.exitCode;
  if (err instanceof InvalidArgumentError) return EXIT_USAGE;
  if (err instanceof FedlabError) return EXIT_FAILURE;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR' || code === 'ENOTDIR') return EXIT_USAGE;
  return EXIT_FAILURE;
}

/** Renders an error as one line for a person; never prints stacks of expected errors. */
export function messageFor(err: unknown): string {
  if (err instanceof Error) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' && e.path) return `no such file or directory: ${e.path}`;
    if (e.code === 'EACCES' && e.path) return `permission denied: ${e.path}`;
    return err.message;
  }
  return String(err);
}

/**
 * Wraps a command action: runs it, and on error prints `fedlab: <message>` and
 * sets the exit code. Unexpected errors also print their stack when FEDLAB_DEBUG is set.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      process.stderr.write(`fedlab: ${messageFor(err)}\n`);
      if (!(err instanceof FedlabError) && !(err instanceof CliExit) && process.env.FEDLAB_DEBUG && err instanceof Error) {
        process.stderr.write(`${err.stack ?? ''}\n`);
      }
      process.exitCode = exitCodeFor(err);
    }
  };
}

/** Prints a value as indented JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Parses a comma-separated list option (`--priv a,b`), dropping empties. */
export function splitList(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Parses a positive integer option or throws an InvalidArgumentError naming the flag. */
export function parsePositiveInt(value: string, flag: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError(`${flag} must be a positive whole number, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}
