/**
 * What the commands that call a service share: reporting a failed call, the caller's TLS flags, and
 * the flags and client of a management authority (`fedlab node`, `fedlab site`). Kept apart from
 * cli-support.ts so that commands that call nothing do not load grpc-js.
 */
import { status } from '@grpc/grpc-js';
import type { Command } from 'commander';
import { FedlabError, InvalidArgumentError, UnavailableError } from '../services/core/errors.js';
import { isUrn } from '../services/core/identity/urn.js';
import { createClient, isServiceError } from '../services/core/rpc/client.js';
import { ManagementAuthorityService } from '../services/generated/fedlab/v1/management_authority.js';
import { checkAddress, CliExit, EXIT_FAILURE, tlsFrom } from './cli-support.js';
import { parseDuration } from './flag-values.js';

/** One metadata value of a failed call ('' when absent). */
function meta(err: { metadata?: { get(key: string): unknown[] } }, key: string): string {
  const v = err.metadata?.get(`fedlab-${key}`)[0];
  return v === undefined ? '' : String(v);
}

/**
 * A failed call as the CLI reports it — the one place that reads a refusal's metadata: the server's
 * refusal is exit 1 with its own message (and the rule it names, if any) and, for `--json`, its status
 * name and the rule, link, site and node its metadata names; our own errors pass through; anything
 * else (no connection) is UNAVAILABLE.
 */
export function refused(err: unknown, what: string): never {
  if (isServiceError(err)) {
    const rule = meta(err, 'rule');
    const fields = { code: codeName(err.code), rule, link: meta(err, 'link'), site: meta(err, 'site'), node: meta(err, 'node') };
    throw new CliExit(EXIT_FAILURE, `${what}: ${err.details || err.message}${rule ? ` (rule ${rule})` : ''}`, fields);
  }
  if (err instanceof CliExit || err instanceof FedlabError) throw err;
  throw new UnavailableError(`${what}: ${(err as Error).message}`);
}

/** TLS flags shared by the provider and sliver commands. */
export interface TlsFlags {
  tlsDir?: string;
  cert?: string;
  key?: string;
  ca?: string;
  timeout?: string;
}

/** Adds the TLS flags to a command. */
export function withTlsFlags(cmd: Command): Command {
  return cmd
    .option('--tls-dir <dir>', 'your key.pem, cert.pem and ca.pem (as `fedlab certs issue --out` writes them)')
    .option('--cert <file>', 'your certificate (PEM)')
    .option('--key <file>', 'your private key (PEM)')
    .option('--ca <file>', 'CA certificates to trust (PEM)')
    .option('--timeout <duration>', 'deadline of the call, e.g. 30s or 5m');
}

/** The flags of a command that calls a management authority. */
export interface MaFlags {
  ma: string;
  maUrn?: string;
  tlsDir?: string;
  cert?: string;
  key?: string;
  ca?: string;
  timeout?: string;
}

/** Adds {@link MaFlags} to a command. */
export function withMaFlags(cmd: Command): Command {
  return cmd
    .requiredOption('--ma <host:port>', "the management authority's address")
    .option('--ma-urn <urn>', "pin the MA's certificate to this URN (instead of checking its host name)")
    .option('--tls-dir <dir>', 'your key.pem, cert.pem and ca.pem (as `fedlab certs issue --out` writes them)')
    .option('--cert <file>', 'your certificate (PEM)')
    .option('--key <file>', 'your private key (PEM)')
    .option('--ca <file>', "the site CA's certificate (PEM)")
    .option('--timeout <duration>', 'deadline of the call, e.g. 10s (default 10s)');
}

/** A ManagementAuthority client from {@link MaFlags}; every call has the --timeout deadline. */
export function maClient(flags: MaFlags) {
  if (flags.maUrn !== undefined && !isUrn(flags.maUrn))
    throw new InvalidArgumentError(`--ma-urn ${JSON.stringify(flags.maUrn)} is not a URN`);
  return createClient(ManagementAuthorityService, {
    address: checkAddress(flags.ma, '--ma'),
    tls: tlsFrom(flags),
    deadlineMs: flags.timeout ? parseDuration(flags.timeout, '--timeout') * 1000 : 10_000,
    ...(flags.maUrn ? { serverUrn: flags.maUrn } : {}),
  });
}

/** A gRPC status code's name (`NOT_FOUND`), or the number when it has none. */
export function codeName(code: number): string {
  return (status as unknown as Record<number, string | undefined>)[code] ?? String(code);
}
