/**
 * `fedlab certs`: the admin certificate tooling (DESIGN §4). A thin layer over
 * certs/: parse flags, call the library, print a summary (or `--json`).
 * Bad input exits 2 and writes nothing; no command ever prints key material.
 */
import { Command } from 'commander';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { initCa } from '../../certs/ca.js';
import { issueCertificate } from '../../certs/issue.js';
import { writeBundle } from '../../certs/bundle.js';
import { inspectFile, type BundleReport, type CertificateReport } from '../../certs/inspect.js';
import { checkAlg, checkDays } from '../../certs/names.js';
import { action, parsePositiveInt, printJson } from '../cli-support.js';

/** Collects a repeatable option that also takes comma-separated values (`--dns a --dns b,c`). */
function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter((s) => s.length > 0)];
}

function parseDays(value: string | undefined): number | undefined {
  return value === undefined ? undefined : checkDays(parsePositiveInt(value, '--days'));
}

function parseNonNegative(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError(`${flag} must be a non-negative whole number, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

interface InitCaFlags {
  domain: string;
  out: string;
  alg?: string;
  days?: string;
  json?: boolean;
}

interface IssueFlags {
  ca: string;
  urn: string;
  out: string;
  days?: string;
  dns?: string[];
  ip?: string[];
  alg?: string;
  key?: string;
  force?: boolean;
  json?: boolean;
}

interface BundleFlags {
  ca: string;
  out: string;
  authority?: string[];
  serial?: string;
  revocationVersion?: string;
  json?: boolean;
}

function line(label: string, value: string): string {
  return `${`${label}:`.padEnd(20)}${value}\n`;
}

function printCertificate(c: CertificateReport): void {
  process.stdout.write(
    line('subject', c.subject) +
      line('issuer', c.issuer) +
      line('urn', c.urn ?? '(none)') +
      line('serial', c.serial) +
      line('not before', c.not_before) +
      line('not after', c.not_after) +
      line('key', c.key_thumbprint ? `${c.key_alg}, thumbprint ${c.key_thumbprint}` : `${c.key_alg} (not a key Fedlab accepts)`) +
      line('subject alt names', c.sans.length > 0 ? c.sans.join(', ') : '(none)') +
      line('ca', c.ca ? 'yes' : 'no') +
      line('sha256 fingerprint', c.fingerprint_sha256),
  );
}

function printBundle(b: BundleReport): void {
  process.stdout.write(
    line('trust bundle of', b.domain) +
      line('serial', String(b.serial)) +
      line('issued at', b.issued_at) +
      line('fingerprint', b.fingerprint) +
      line('revocation version', String(b.revocation_version)) +
      b.ca_subjects.map((s) => line('ca certificate', s)).join('') +
      (b.authorities.length > 0 ? b.authorities.map((a) => line('authority', `${a.urn} (kid ${a.kid})`)).join('') : line('authorities', '(none)')) +
      (b.canonical ? '' : 'note: the file is not in canonical form; the fingerprint is of its canonical JSON\n'),
  );
}

/** Registers `fedlab certs` and its subcommands. */
export function registerCertsCommand(program: Command): void {
  const certs = program.command('certs').description('domain CAs, principals\' certificates and trust bundles');

  certs
    .command('init-ca')
    .description('create a self-signed CA for a domain')
    .requiredOption('--domain <domain>', 'the domain, a lower-case DNS name (e.g. plc.test)')
    .requiredOption('--out <dir>', 'the CA directory to create (ca.key, ca.pem, ca.json)')
    .option('--alg <alg>', 'key algorithm: p256 or ed25519', 'p256')
    .option('--days <n>', 'validity in days (default 3650)')
    .option('--json', 'print the result as JSON')
    .action(
      action(async (flags: InitCaFlags) => {
        const r = await initCa({ domain: flags.domain, outDir: flags.out, alg: checkAlg(flags.alg), days: parseDays(flags.days) });
        if (flags.json) {
          printJson({ dir: r.dir, domain: r.domain, alg: r.alg, serial: r.serial, not_before: r.notBefore.toISOString(), not_after: r.notAfter.toISOString(), files: r.paths });
          return;
        }
        process.stdout.write(
          `created the CA of ${r.domain} in ${r.dir}\n` +
            line('algorithm', r.alg) +
            line('valid until', r.notAfter.toISOString()) +
            line('certificate', r.paths.cert) +
            line('private key', `${r.paths.key} (mode 0600; keep it offline if you can)`),
        );
      }),
    );

  certs
    .command('issue')
    .description("issue a principal's certificate (its URN as URI SAN) from a domain CA")
    .requiredOption('--ca <dir>', 'the CA directory (from init-ca)')
    .requiredOption('--urn <urn>', "the principal's URN, urn:fedlab:<domain>:<kind>:<name>, in the CA's domain")
    .requiredOption('--out <dir>', 'directory to write key.pem, cert.pem and ca.pem into')
    .option('--days <n>', 'validity in days (default 365, never past the CA)')
    .option('--dns <name>', 'a DNS subjectAltName (repeatable, or comma-separated)', collect)
    .option('--ip <addr>', 'an IP subjectAltName (repeatable, or comma-separated)', collect)
    .option('--alg <alg>', 'key algorithm of a new key: p256 (default) or ed25519')
    .option('--key <file>', 'certify this existing PEM private key instead of generating one')
    .option('--force', 'replace an existing key.pem in --out')
    .option('--json', 'print the result as JSON')
    .action(
      action(async (flags: IssueFlags) => {
        const r = await issueCertificate({
          caDir: flags.ca,
          urn: flags.urn,
          outDir: flags.out,
          days: parseDays(flags.days),
          dns: flags.dns,
          ip: flags.ip,
          alg: flags.alg === undefined ? undefined : checkAlg(flags.alg),
          keyFile: flags.key,
          force: flags.force === true,
        });
        if (r.clipped) process.stderr.write(`fedlab: note: the validity was cut to end with the CA's, on ${r.notAfter.toISOString()}\n`);
        if (flags.json) {
          printJson({
            urn: r.urn,
            serial: r.serial,
            alg: r.alg,
            kid: r.kid,
            not_before: r.notBefore.toISOString(),
            not_after: r.notAfter.toISOString(),
            clipped: r.clipped,
            dir: r.dir,
            files: r.paths,
          });
          return;
        }
        process.stdout.write(
          `issued ${r.urn} into ${r.dir}\n` +
            line('serial', r.serial) +
            line('valid until', r.notAfter.toISOString()) +
            line('key', `${r.alg}, thumbprint ${r.kid}`) +
            line('files', `${r.paths.key} (mode 0600), ${r.paths.cert}, ${r.paths.ca}`),
        );
      }),
    );

  certs
    .command('bundle')
    .description("write the domain's trust bundle: CA certificates, authority keys, revocation version")
    .requiredOption('--ca <dir>', 'the CA directory (from init-ca)')
    .requiredOption('--out <file>', 'the bundle file to write')
    .option('--authority <cert>', 'also vouch for this certificate of the domain (repeatable)', collect)
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
        process.stdout.write(
          `wrote the trust bundle of ${r.bundle.domain} to ${r.file}\n` +
            line('serial', String(r.bundle.serial)) +
            line('revocation version', String(r.bundle.revocation_version)) +
            (r.authorities.length > 0 ? r.authorities.map((a) => line('authority', `${a.urn} (kid ${a.kid})`)).join('') : line('authorities', '(none)')) +
            line('fingerprint', r.fingerprint),
        );
      }),
    );

  certs
    .command('inspect')
    .description('describe a certificate file or a trust bundle (never prints keys)')
    .argument('<file>', 'a PEM/DER certificate file or a trust bundle (JSON)')
    .option('--json', 'print the description as JSON')
    .action(
      action(async (file: string, flags: { json?: boolean }) => {
        const report = await inspectFile(file);
        if (flags.json) {
          printJson(report);
          return;
        }
        if (report.type === 'bundle') {
          printBundle(report);
          return;
        }
        report.certificates.forEach((c, i) => {
          if (i > 0) process.stdout.write('\n');
          printCertificate(c);
        });
      }),
    );
}
