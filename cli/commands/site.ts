/**
 * `fedlab site delegate|revoke`: a site administrator's delegation of slice
 * creation to a slice authority (the site's own or a peered domain's, as the
 * MA's `delegation_policy` allows), and revocation. `delegate` calls
 * DelegateToSliceAuthority and writes the `MA → SA` chain file the slice
 * authority reads (one compact JWS per line, root first).
 * Exit codes: 0 done; 1 the MA refused or could not be reached; 2 bad input.
 */
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { isUrn } from '../../services/core/identity/urn.js';
import { action, printJson, splitList, readFlagFile } from '../cli-support.js';
import { maClient, refused, withMaFlags, type MaFlags } from '../remote.js';
import { parseDuration, parseLimits } from './cred.js';

/** Writes the chain file whole (temporary file, then rename). */
function writeChain(file: string, chain: readonly string[]): void {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, `${chain.join('\n')}\n`, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function wholeNumber(v: string | undefined, flag: string, max: number): number {
  if (v === undefined) return 0;
  if (!/^[0-9]+$/.test(v) || Number(v) > max) throw new InvalidArgumentError(`${flag} must be a whole number from 0 to ${max}, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** Registers `fedlab site`. */
export function registerSiteCommand(program: Command): void {
  const site = program.command('site').description("a site administrator's delegations to slice authorities");

  withMaFlags(site.command('delegate').description('delegate slice creation over this site’s nodes to a slice authority; writes the MA → SA chain file'))
    .requiredOption('--sa-urn <urn>', "the slice authority's URN (urn:fedlab:<domain>:authority:<name>)")
    .option('--sa-cert <file>', "the slice authority's certificate (PEM): its key is delegated to")
    .option('--sa-jwk <file>', "or the slice authority's public key as a JWK (JSON file)")
    .option('--priv <list>', 'privileges, comma-separated (default: every node and sliver privilege)')
    .option('--target <list>', "targets, comma-separated (default: urn:fedlab:<site>:node:*)")
    .option('--lim <pairs>', 'resource caps, e.g. slivers=200,cpu_millis=8000,mem_mb=16384,disk_mb=65536,ttl_s=604800')
    .option('--ttl <duration>', "lifetime, e.g. 30d (default: the site's delegation_ttl_s)")
    .option('--dlg <n>', 'how many more delegations may follow (default 0)')
    .option('--request-id <id>', 'idempotency key (default: derived from the SA URN and the time)')
    .requiredOption('--out <file>', 'where to write the chain (one compact JWS per line, root first)')
    .option('--json', 'print JSON')
    .action(
      action(
        async (
          f: MaFlags & { saUrn: string; saCert?: string; saJwk?: string; priv?: string; target?: string; lim?: string; ttl?: string; dlg?: string; requestId?: string; out: string; json?: boolean },
        ) => {
          if (!isUrn(f.saUrn)) throw new InvalidArgumentError(`--sa-urn ${JSON.stringify(f.saUrn)} is not a URN`);
          if (Boolean(f.saCert) === Boolean(f.saJwk)) throw new InvalidArgumentError('give exactly one of --sa-cert and --sa-jwk');
          const limits = parseLimits(f.lim);
          const ttlS = f.ttl ? parseDuration(f.ttl) : 0;
          const dlg = wholeNumber(f.dlg, '--dlg', 7);
          const req = {
            requestId: f.requestId ?? `cli-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`,
            sliceAuthorityUrn: f.saUrn,
            sliceAuthorityJwk: f.saJwk ? readFlagFile(f.saJwk, '--sa-jwk').trim() : '',
            sliceAuthorityCertificatePem: f.saCert ? readFlagFile(f.saCert, '--sa-cert') : '',
            privileges: splitList(f.priv),
            targets: splitList(f.target),
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
          checkWritable(f.out);
          const c = maClient(f);
          try {
            const res = await c.delegateToSliceAuthority(req).catch((err: unknown) => refused(err, 'the management authority refused the delegation'));
            writeChain(f.out, res.chain);
            if (f.json) printJson({ jti: res.jti, expires_at: res.expiresAt?.toISOString(), links: res.chain.length, out: f.out, request_id: req.requestId });
            else process.stdout.write(`delegated to ${f.saUrn}: credential ${res.jti}, valid until ${res.expiresAt?.toISOString()}; wrote the chain to ${f.out}\n`);
          } finally {
            c.close();
          }
        },
      ),
    );

  withMaFlags(site.command('revoke').description("put a credential (by jti) or a key (by thumbprint) on the site's revocation list"))
    .option('--jti <id>', 'the credential to revoke (as `site delegate` printed it)')
    .option('--kid <thumbprint>', 'or the key to revoke (RFC 7638 thumbprint)')
    .option('--reason <text>', 'why (kept with the entry)', 'revoked by a site administrator')
    .option('--json', 'print JSON')
    .action(
      action(async (f: MaFlags & { jti?: string; kid?: string; reason: string; json?: boolean }) => {
        if (Boolean(f.jti) === Boolean(f.kid)) throw new InvalidArgumentError('give exactly one of --jti and --kid');
        const c = maClient(f);
        try {
          const res = await c
            .revoke({ jti: f.jti ?? '', keyThumbprint: f.kid ?? '', reason: f.reason })
            .catch((err: unknown) => refused(err, 'the management authority refused the revocation'));
          if (f.json) printJson({ version: res.version, entry: res.entry });
          else process.stdout.write(`revoked ${f.jti ? `credential ${f.jti}` : `key ${f.kid}`}; the site's revocation list is at version ${res.version}\n`);
        } finally {
          c.close();
        }
      }),
    );
}

function checkWritable(file: string): void {
  const probe = join(dirname(file), `.${basename(file)}.${randomBytes(4).toString('hex')}.probe`);
  try {
    writeFileSync(probe, '', { flag: 'wx', mode: 0o600 });
    rmSync(probe, { force: true });
  } catch (err) {
    throw new InvalidArgumentError(`--out ${file}: cannot write there (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
