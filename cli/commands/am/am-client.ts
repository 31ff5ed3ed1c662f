/**
 * The flags and client of `fedlab am`: the site's aggregate (its management authority) by `--address`
 * or a profile's `ma`, the caller's TLS identity (a slice authority's, for the calls on slices), and
 * the `--chain` file (MA → SA) the calls on slices show.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isUrn, parseUrn } from '../../../services/core/identity/urn.js';
import { createClient, type PromiseClient } from '../../../services/core/rpc/client.js';
import { AggregateService } from '../../../services/generated/fedlab/v1/aggregate.js';
import { checkAddress, tlsFrom } from '../../cli-support.js';
import { parseDuration } from '../../flag-values.js';
import { withTlsFlags, type TlsFlags } from '../../remote.js';
import { readChainFlag } from '../sliver/node-client.js';

/** The flags every `fedlab am` command takes. */
export interface AmFlags extends TlsFlags {
  address: string;
  maUrn?: string;
  chain?: string;
  json?: boolean;
}

/** An Aggregate client. */
export type AmClient = PromiseClient<typeof AggregateService>;

/** Adds {@link AmFlags} to a command (`chain`: whether the call shows a chain). */
export function withAm(cmd: Command, chain: boolean): Command {
  cmd
    .requiredOption('--address <host:port>', "the site's aggregate (its management authority); or a profile's --ma")
    .option('--ma-urn <urn>', "pin the aggregate's certificate to this URN (instead of its host name)");
  if (chain)
    cmd.requiredOption('--chain <file>', "your MA → SA chain for this site (a slice authority's chain_file); or a profile's first --chain");
  return withTlsFlags(cmd).option('--json', 'print JSON');
}

/** A client from {@link AmFlags}; every call has the --timeout deadline (30 s without one). */
export function amClient(flags: AmFlags): AmClient {
  if (flags.maUrn !== undefined && !isUrn(flags.maUrn))
    throw new InvalidArgumentError(`--ma-urn ${JSON.stringify(flags.maUrn)} is not a URN`);
  return createClient(AggregateService, {
    address: checkAddress(flags.address, '--address'),
    tls: tlsFrom(flags),
    deadlineMs: (flags.timeout ? parseDuration(flags.timeout, '--timeout') : 30) * 1000,
    ...(flags.maUrn ? { serverUrn: flags.maUrn } : {}),
  });
}

/** The `--chain` file's links (required by the calls on slices). */
export function amChain(flags: AmFlags): string[] {
  if (!flags.chain) throw new InvalidArgumentError('give --chain FILE (your MA → SA chain for this site)');
  return readChainFlag(flags.chain);
}

/** Checks the URNs a call on slivers names: one slice URN, or sliver URNs. */
export function checkUrns(urns: readonly string[]): string[] {
  if (urns.length === 0) throw new InvalidArgumentError('name a slice URN, or sliver URNs of one slice');
  for (const u of urns) {
    const kind = isUrn(u) ? parseUrn(u).kind : undefined;
    if (kind !== 'slice' && kind !== 'sliver') throw new InvalidArgumentError(`${JSON.stringify(u)} is neither a slice nor a sliver URN`);
  }
  if (urns.length > 1 && urns.some((u) => parseUrn(u).kind === 'slice'))
    throw new InvalidArgumentError('name one slice URN alone, or only sliver URNs');
  return [...urns];
}

/** Runs `fn` with a client and closes it after. */
export async function withAmClient<T>(flags: AmFlags, fn: (client: AmClient) => Promise<T>): Promise<T> {
  const client = amClient(flags);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
