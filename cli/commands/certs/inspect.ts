/** `fedlab certs inspect`: a certificate file or a trust bundle described (never keys). */
import type { Command } from 'commander';
import { inspectFile, type BundleReport, type CertificateReport } from '../../../certs/inspect.js';
import { action, printJson } from '../../cli-support.js';
import { line } from './report-line.js';
import { writeOut } from '../../printable.js';

function printCertificate(c: CertificateReport): void {
  writeOut(
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
  writeOut(
    line('trust bundle of', b.domain) +
      line('serial', String(b.serial)) +
      line('issued at', b.issued_at) +
      line('fingerprint', b.fingerprint) +
      line('revocation version', String(b.revocation_version)) +
      b.ca_subjects.map((s) => line('ca certificate', s)).join('') +
      (b.authorities.length > 0
        ? b.authorities.map((a) => line('authority', `${a.urn} (kid ${a.kid})`)).join('')
        : line('authorities', '(none)')) +
      (b.canonical ? '' : 'note: the file is not in canonical form; the fingerprint is of its canonical JSON\n'),
  );
}

/** Registers `fedlab certs inspect`. */
export function registerCertsInspect(certs: Command): void {
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
          if (i > 0) writeOut('\n');
          printCertificate(c);
        });
      }),
    );
}
