/** `fedlab certs bundle`: the domain's trust bundle (CA certificates, authority keys, revocation version). */
import type { Command } from 'commander';
import { writeBundle } from '../../../certs/bundle.js';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { action, printJson } from '../../cli-support.js';
import { repeatableList } from '../../flag-values.js';
import { line } from './report-line.js';
import { writeOut } from '../../printable.js';

interface BundleFlags {
  ca: string;
  out: string;
  authority?: string[];
  serial?: string;
  revocationVersion?: string;
  json?: boolean;
}

function parseNonNegative(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError(`${flag} must be a non-negative whole number, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** Registers `fedlab certs bundle`. */
export function registerCertsBundle(certs: Command): void {
  certs
    .command('bundle')
    .description("write the domain's trust bundle: CA certificates, authority keys, revocation version")
    .requiredOption('--ca <dir>', 'the CA directory (from init-ca)')
    .requiredOption('--out <file>', 'the bundle file to write')
    .option('--authority <cert>', 'also vouch for this certificate of the domain (repeatable)', repeatableList)
    .option('--serial <n>', "bundle serial (default: the last bundle's + 1)")
    .option('--revocation-version <n>', "revocation list version (default: the last bundle's, or 0)")
    .option('--json', 'print the result as JSON')
    .action(
      action(async (flags: BundleFlags) => {
        const r = await writeBundle({
          caDir: flags.ca,
          outFile: flags.out,
          authorityFiles: flags.authority,
          serial: parseNonNegative(flags.serial, '--serial'),
          revocationVersion: parseNonNegative(flags.revocationVersion, '--revocation-version'),
        });
        if (flags.json) {
          printJson({
            file: r.file,
            domain: r.bundle.domain,
            serial: r.bundle.serial,
            revocation_version: r.bundle.revocation_version,
            fingerprint: r.fingerprint,
            authorities: r.authorities.map((a) => ({ urn: a.urn, kid: a.kid, source: a.source })),
          });
          return;
        }
        writeOut(
          `wrote the trust bundle of ${r.bundle.domain} to ${r.file}\n` +
            line('serial', String(r.bundle.serial)) +
            line('revocation version', String(r.bundle.revocation_version)) +
            (r.authorities.length > 0
              ? r.authorities.map((a) => line('authority', `${a.urn} (kid ${a.kid})`)).join('')
              : line('authorities', '(none)')) +
            line('fingerprint', r.fingerprint),
        );
      }),
    );
}
