/**
 * `fedlab site release`: Aggregate.Delete of a slice (or some of its slivers) at one site, called as
 * the slice authority that created the slice there: its own TLS identity (`--tls-dir` of the SA) and
 * the `MA → SA` chain the site gave it (`--chain`, the file its config's `chain_file` names). Releases
 * holds and slivers a site keeps for a slice the slice authority no longer has, which is what
 * `fedlab federation check` proposes for them. Releasing what the site no longer has succeeds (0 released).
 */
import { status as Status } from '@grpc/grpc-js';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isUrn, parseUrn } from '../../../services/core/identity/urn.js';
import { createClient, isServiceError } from '../../../services/core/rpc/client.js';
import { AggregateService } from '../../../services/generated/fedlab/v1/aggregate.js';
import { action, checkAddress, printJson, tlsFrom } from '../../cli-support.js';
import { parseDuration, repeatable } from '../../flag-values.js';
import { counted } from '../../printable.js';
import { refused, withTlsFlags, type TlsFlags } from '../../remote.js';
import { readChainFlag } from '../sliver/node-client.js';

interface ReleaseFlags extends TlsFlags {
  ma: string;
  maUrn?: string;
  slice: string;
  sliver: string[];
  chain: string;
  json?: boolean;
}

/** Registers `fedlab site release`. */
export function registerSiteRelease(site: Command): void {
  withTlsFlags(
    site
      .command('release')
      .description("as a slice authority: delete a slice's holds and slivers at one site (Aggregate.Delete with its MA → SA chain)")
      .requiredOption('--ma <host:port>', "the site's management authority")
      .option('--ma-urn <urn>', "pin the MA's certificate to this URN (instead of checking its host name)")
      .requiredOption('--slice <urn>', 'the slice')
      .option('--sliver <urn>', 'only this sliver of the slice (repeatable); default: all of the slice at this site', repeatable, [])
      .requiredOption('--chain <file>', "the slice authority's MA → SA chain for this site (its config's chain_file)"),
  )
    .option('--json', 'print JSON')
    .action(
      action(async (flags: ReleaseFlags) => {
        if (!isUrn(flags.slice) || parseUrn(flags.slice).kind !== 'slice')
          throw new InvalidArgumentError(`--slice must be a slice URN, got ${JSON.stringify(flags.slice)}`);
        for (const s of flags.sliver)
          if (!isUrn(s) || parseUrn(s).kind !== 'sliver')
            throw new InvalidArgumentError(`--sliver must be a sliver URN, got ${JSON.stringify(s)}`);
        if (flags.maUrn !== undefined && !isUrn(flags.maUrn))
          throw new InvalidArgumentError(`--ma-urn ${JSON.stringify(flags.maUrn)} is not a URN`);
        const chain = readChainFlag(flags.chain);
        const client = createClient(AggregateService, {
          address: checkAddress(flags.ma, '--ma'),
          tls: tlsFrom(flags),
          deadlineMs: flags.timeout ? parseDuration(flags.timeout, '--timeout') * 1000 : 30_000,
          ...(flags.maUrn ? { serverUrn: flags.maUrn } : {}),
        });
        try {
          const urns = flags.sliver.length > 0 ? flags.sliver : [flags.slice];
          const res = await client.delete({ urns, bestEffort: true }, { chain }).catch((err: unknown) => {
            // What the site no longer has is released already.
            if (isServiceError(err, Status.NOT_FOUND)) return { results: [] };
            return refused(err, `the site did not release ${flags.slice}`);
          });
          const failed = res.results.filter((r) => (r.status?.code ?? 0) !== 0);
          if (flags.json)
            printJson({
              slice_urn: flags.slice,
              results: res.results.map((r) => ({ sliver_urn: r.sliverUrn, code: r.status?.code ?? 0, reason: r.status?.reason ?? '' })),
            });
          else {
            process.stdout.write(`released ${counted(res.results.length - failed.length, 'sliver')} of ${flags.slice}\n`);
            for (const r of failed) process.stdout.write(`  not released: ${r.sliverUrn}: ${r.status?.reason ?? ''}\n`);
          }
          if (failed.length > 0) process.exitCode = 1;
        } finally {
          client.close();
        }
      }),
    );
}
