/** The flags and client of a command that calls a service provider. */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isUrn } from '../../../services/core/identity/urn.js';
import { createClient } from '../../../services/core/rpc/client.js';
import { ServiceProviderService } from '../../../services/generated/fedlab/v1/service_provider.js';
import { checkAddress, tlsFrom } from '../../cli-support.js';
import { parseDuration } from '../../flag-values.js';
import { withTlsFlags, type TlsFlags } from '../../remote.js';

/** The flags of a command that calls a service provider. */
export interface SpFlags extends TlsFlags {
  sp: string;
  spUrn?: string;
}

/** A ServiceProvider client from {@link SpFlags}; every call has the --timeout deadline (`defaultTimeoutS` without one). */
export function spClient(flags: SpFlags, defaultTimeoutS = 30) {
  if (flags.spUrn !== undefined && !isUrn(flags.spUrn))
    throw new InvalidArgumentError(`--sp-urn ${JSON.stringify(flags.spUrn)} is not a URN`);
  return createClient(ServiceProviderService, {
    address: checkAddress(flags.sp, '--sp'),
    tls: tlsFrom(flags),
    deadlineMs: (flags.timeout ? parseDuration(flags.timeout, '--timeout') : defaultTimeoutS) * 1000,
    ...(flags.spUrn ? { serverUrn: flags.spUrn } : {}),
  });
}

/** Adds {@link SpFlags} to a command. */
export function withSp(cmd: Command): Command {
  return withTlsFlags(
    cmd
      .requiredOption('--sp <host:port>', "the service provider's address")
      .option('--sp-urn <urn>', "pin the provider's certificate to this URN (instead of its host name)"),
  );
}
