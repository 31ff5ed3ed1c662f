/**
 * What every `fedlab` command shares: turning errors into a one-line message
 * on stderr and an exit code, printing JSON for `--json`, reading the files
 * flags name and the caller's TLS material. Flag values are parsed in
 * flag-values.ts.
 *
 * Exit codes: 0 success; 1 the operation ran and said no (e.g. an invalid
 * credential in `cred verify`, a refused call); 2 bad input or usage (a
 * malformed URN, a missing file, an unknown flag). Bad input changes nothing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FedlabError, InvalidArgumentError } from '../services/core/errors.js';
import { checkEndpoint } from '../services/core/endpoint.js';
import type { TlsMaterial } from '../services/core/rpc/server.js';
import { CliExit, errorObject } from './error-report.js';
import { printableJson, writeErr } from './printable.js';

/** Exit code for bad input or usage. */
export const EXIT_USAGE = 2;
/** Exit code for an operation that ran and failed or refused. */
export const EXIT_FAILURE = 1;

export { CliExit } from './error-report.js';

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

/** Whether the command commander passes last to an action was given `--json`. */
function wantsJson(args: readonly unknown[]): boolean {
  const cmd = args[args.length - 1] as { opts?: () => Record<string, unknown> } | undefined;
  return typeof cmd?.opts === 'function' && cmd.opts().json === true;
}

/**
 * Reports an error on stderr — `fedlab: <message>`, or with `json` the JSON error object of
 * error-report.ts — and returns its exit code. Unexpected errors also print their stack when
 * FEDLAB_DEBUG is set.
 */
export function reportError(err: unknown, json: boolean): number {
  const code = exitCodeFor(err);
  // A refusal's message is the server's text: shown printable (escaped in JSON).
  if (json) process.stderr.write(`${printableJson(errorObject(err, messageFor(err), code))}\n`);
  else writeErr(`fedlab: ${messageFor(err)}\n`);
  if (!(err instanceof FedlabError) && !(err instanceof CliExit) && process.env.FEDLAB_DEBUG && err instanceof Error) {
    writeErr(`${err.stack ?? ''}\n`);
  }
  return code;
}

/** Wraps a command action: runs it, and on error {@link reportError}s (as JSON with `--json`) and sets the exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      process.exitCode = reportError(err, wantsJson(args));
    }
  };
}

/** Prints a value as indented JSON on stdout (control characters escaped, C1 and DEL included). */
export function printJson(value: unknown): void {
  process.stdout.write(`${printableJson(value, 2)}\n`);
}

/** Reads a file named by a flag; a failure names the flag (bad input: exit 2). */
export function readFlagFile(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`${flag} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** The TLS flags of client commands. */
export interface TlsFileFlags {
  readonly tlsDir?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly ca?: string;
}

/** The caller's TLS material: `--tls-dir` (key.pem, cert.pem, ca.pem as `fedlab certs issue` writes them; `--ca` overrides ca.pem) or the three files. */
export function tlsFrom(flags: TlsFileFlags): TlsMaterial {
  if (flags.tlsDir) {
    return {
      key: readFlagFile(join(flags.tlsDir, 'key.pem'), '--tls-dir'),
      cert: readFlagFile(join(flags.tlsDir, 'cert.pem'), '--tls-dir'),
      caCerts: readFlagFile(flags.ca ?? join(flags.tlsDir, 'ca.pem'), flags.ca ? '--ca' : '--tls-dir'),
    };
  }
  if (!flags.cert || !flags.key || !flags.ca)
    throw new InvalidArgumentError('give --tls-dir DIR (with key.pem, cert.pem and ca.pem), or --cert, --key and --ca');
  return { cert: readFlagFile(flags.cert, '--cert'), key: readFlagFile(flags.key, '--key'), caCerts: readFlagFile(flags.ca, '--ca') };
}

/** A `host:port` flag value (port at most 65535); anything else is bad input naming the flag. */
export function checkAddress(addr: string, flag: string): string {
  return checkEndpoint(addr, flag);
}
