/** The flags and client of the `fedlab slice` commands, and how they name a slice (URN or name). */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isUrn, isValidName, parseUrn } from '../../../services/core/identity/urn.js';
import { createClient, type PromiseClient } from '../../../services/core/rpc/client.js';
import { SliceAuthorityService, SliceState } from '../../../services/generated/fedlab/v1/slice_authority.js';
import { checkAddress, CliExit, EXIT_FAILURE, tlsFrom } from '../../cli-support.js';
import { parseDuration } from '../../flag-values.js';
import { refused } from '../../remote.js';

/** The flags every `fedlab slice` command takes. */
export interface ConnFlags {
  sa: string;
  saUrn?: string;
  tlsDir?: string;
  cert?: string;
  key?: string;
  ca?: string;
  timeout?: string;
  json?: boolean;
}

/** A SliceAuthority client. */
export type SaClient = PromiseClient<typeof SliceAuthorityService>;

/** A client from {@link ConnFlags}; every call has the --timeout deadline (`defaultDeadlineMs` without one). */
export function saClient(flags: ConnFlags, defaultDeadlineMs = 30_000): SaClient {
  checkAddress(flags.sa, '--sa');
  if (flags.saUrn !== undefined && !isUrn(flags.saUrn))
    throw new InvalidArgumentError(`--sa-urn ${JSON.stringify(flags.saUrn)} is not a URN`);
  return createClient(SliceAuthorityService, {
    address: flags.sa,
    tls: tlsFrom(flags),
    deadlineMs: flags.timeout ? parseDuration(flags.timeout, '--timeout') * 1000 : defaultDeadlineMs,
    ...(flags.saUrn ? { serverUrn: flags.saUrn } : {}),
  });
}

/** Adds {@link ConnFlags} to a command. */
export function withConn(cmd: Command): Command {
  return cmd
    .requiredOption('--sa <host:port>', "the slice authority's address")
    .option('--sa-urn <urn>', "pin the SA's certificate to this URN (instead of checking its host name)")
    .option('--tls-dir <dir>', 'your key.pem, cert.pem and ca.pem (as `fedlab certs issue --out` writes them)')
    .option('--cert <file>', 'your certificate (PEM)')
    .option('--key <file>', 'your private key (PEM)')
    .option('--ca <file>', 'the CA certificate that verifies the SA (PEM)')
    .option('--timeout <duration>', 'deadline of each call, e.g. 30s (default 30s; create waits as long as the sites take)')
    .option('--json', 'print JSON instead of tables and progress');
}

/** A slice URN from a URN or a name (looked up among the caller's slices). */
export async function resolveSlice(client: SaClient, ref: string): Promise<string> {
  if (isUrn(ref)) {
    if (parseUrn(ref).kind !== 'slice') throw new InvalidArgumentError(`${ref} is not a slice URN`);
    return ref;
  }
  if (!isValidName(ref)) throw new InvalidArgumentError(`${JSON.stringify(ref)} is neither a slice URN nor a slice name`);
  let token = '';
  do {
    const page = await client
      .listSlices({ pageSize: 1000, pageToken: token, state: SliceState.SLICE_STATE_UNSPECIFIED })
      .catch((err: unknown) => refused(err, 'cannot list slices'));
    const hit = page.slices.find((s) => parseUrn(s.urn).name === ref);
    if (hit) return hit.urn;
    token = page.nextPageToken;
  } while (token);
  throw new CliExit(EXIT_FAILURE, `no live slice named ${ref}; list your slices with \`fedlab slice ls\` or give the slice URN`);
}
