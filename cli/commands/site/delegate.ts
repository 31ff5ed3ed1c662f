/** `fedlab site delegate`: slice creation over the site's nodes delegated to a slice authority; writes the MA → SA chain file. */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isUrn } from '../../../services/core/identity/urn.js';
import { action, printJson, readFlagFile } from '../../cli-support.js';
import { parseDuration, splitList } from '../../flag-values.js';
import { maClient, refused, withMaFlags, type MaFlags } from '../../remote.js';
import { parseLimits } from '../cred/limits-flag.js';
import { writeChainFile } from '../../chain-file.js';
import { checkWritable } from './out-file.js';
import { writeOut } from '../../printable.js';

interface DelegateFlags extends MaFlags {
  saUrn: string;
  saCert?: string;
  saJwk?: string;
  priv?: string;
  target?: string;
  lim?: string;
  ttl?: string;
  dlg?: string;
  requestId?: string;
  out: string;
  json?: boolean;
  force?: boolean;
}

function wholeNumber(value: string | undefined, flag: string, max: number): number {
  if (value === undefined) return 0;
  if (!/^[0-9]+$/.test(value) || Number(value) > max)
    throw new InvalidArgumentError(`${flag} must be a whole number from 0 to ${max}, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** Registers `fedlab site delegate`. */
export function registerSiteDelegate(site: Command): void {
  withMaFlags(
    site
      .command('delegate')
      .description('delegate slice creation over this site’s nodes to a slice authority; writes the MA → SA chain file'),
  )
    .requiredOption('--sa-urn <urn>', "the slice authority's URN (urn:fedlab:<domain>:authority:<name>)")
    .option('--sa-cert <file>', "the slice authority's certificate (PEM): its key is delegated to")
    .option('--sa-jwk <file>', "or the slice authority's public key as a JWK (JSON file)")
    .option('--priv <list>', 'privileges, comma-separated (default: every node and sliver privilege)')
    .option('--target <list>', 'targets, comma-separated (default: urn:fedlab:<site>:node:*)')
    .option('--lim <pairs>', 'resource caps, e.g. slivers=200,cpu_millis=8000,mem_mb=16384,disk_mb=65536,ttl_s=604800')
    .option('--ttl <duration>', "lifetime, e.g. 30d (default: the site's delegation_ttl_s)")
    .option('--dlg <n>', 'how many more delegations may follow (default 0)')
    .option('--request-id <id>', 'idempotency key (default: derived from the SA URN and the time)')
    .requiredOption('--out <file>', 'where to write the chain (one compact JWS per line, root first; 0600; an existing file is refused)')
    .option('--force', 'replace an existing --out file (never a symbolic link)')
    .option('--json', 'print JSON')
    .action(action(async (flags: DelegateFlags) => delegate(flags)));
}

async function delegate(flags: DelegateFlags): Promise<void> {
  if (!isUrn(flags.saUrn)) throw new InvalidArgumentError(`--sa-urn ${JSON.stringify(flags.saUrn)} is not a URN`);
  if (Boolean(flags.saCert) === Boolean(flags.saJwk)) throw new InvalidArgumentError('give exactly one of --sa-cert and --sa-jwk');
  const limits = parseLimits(flags.lim);
  const ttlS = flags.ttl ? parseDuration(flags.ttl) : 0;
  const dlg = wholeNumber(flags.dlg, '--dlg', 7);
  const request = {
    requestId: flags.requestId ?? `cli-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`,
    sliceAuthorityUrn: flags.saUrn,
    sliceAuthorityJwk: flags.saJwk ? readFlagFile(flags.saJwk, '--sa-jwk').trim() : '',
    sliceAuthorityCertificatePem: flags.saCert ? readFlagFile(flags.saCert, '--sa-cert') : '',
    privileges: splitList(flags.priv),
    targets: splitList(flags.target),
    limits: {
      ...(limits.slivers !== undefined ? { slivers: limits.slivers } : {}),
      ...(limits.cpu_millis !== undefined ? { cpuMillis: limits.cpu_millis } : {}),
      ...(limits.mem_mb !== undefined ? { memMb: limits.mem_mb } : {}),
      ...(limits.disk_mb !== undefined ? { diskMb: limits.disk_mb } : {}),
      ...(limits.ttl_s !== undefined ? { ttlS: limits.ttl_s } : {}),
    },
    ttlS,
    maxDelegations: dlg,
  };
  // Check the output location before asking the MA for anything.
  checkWritable(flags.out, flags.force === true);
  const client = maClient(flags);
  try {
    const res = await client
      .delegateToSliceAuthority(request)
      .catch((err: unknown) => refused(err, 'the management authority refused the delegation'));
    writeChainFile(flags.out, res.chain, { replace: flags.force === true });
    if (flags.json)
      printJson({
        jti: res.jti,
        expires_at: res.expiresAt?.toISOString(),
        links: res.chain.length,
        out: flags.out,
        request_id: request.requestId,
      });
    else
      writeOut(
        `delegated to ${flags.saUrn}: credential ${res.jti}, valid until ${res.expiresAt?.toISOString()}; wrote the chain to ${flags.out}\n`,
      );
  } finally {
    client.close();
  }
}
