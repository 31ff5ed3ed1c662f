/** `fedlab certs issue`: a principal's certificate (its URN as URI SAN) from a domain CA. */
import type { Command } from 'commander';
import { issueCertificate } from '../../../certs/issue.js';
import { checkAlg } from '../../../certs/names.js';
import { action, printJson } from '../../cli-support.js';
import { repeatableList } from '../../flag-values.js';
import { line, parseDays } from './report-line.js';
import { writeOut, writeErr } from '../../printable.js';

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

/** Registers `fedlab certs issue`. */
export function registerCertsIssue(certs: Command): void {
  certs
    .command('issue')
    .description("issue a principal's certificate (its URN as URI SAN) from a domain CA")
    .requiredOption('--ca <dir>', 'the CA directory (from init-ca)')
    .requiredOption('--urn <urn>', "the principal's URN, urn:fedlab:<domain>:<kind>:<name>, in the CA's domain")
    .requiredOption('--out <dir>', 'directory to write key.pem, cert.pem and ca.pem into')
    .option('--days <n>', 'validity in days (default 365, never past the CA)')
    .option('--dns <name>', 'a DNS subjectAltName (repeatable, or comma-separated)', repeatableList)
    .option('--ip <addr>', 'an IP subjectAltName (repeatable, or comma-separated)', repeatableList)
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
        if (r.clipped) writeErr(`fedlab: note: the validity was cut to end with the CA's, on ${r.notAfter.toISOString()}\n`);
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
        writeOut(
          `issued ${r.urn} into ${r.dir}\n` +
            line('serial', r.serial) +
            line('valid until', r.notAfter.toISOString()) +
            line('key', `${r.alg}, thumbprint ${r.kid}`) +
            line('files', `${r.paths.key} (mode 0600), ${r.paths.cert}, ${r.paths.ca}`),
        );
      }),
    );
}
