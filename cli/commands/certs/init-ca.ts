/** `fedlab certs init-ca`: a self-signed CA for a domain. */
import type { Command } from 'commander';
import { initCa } from '../../../certs/ca.js';
import { checkAlg } from '../../../certs/names.js';
import { action, printJson } from '../../cli-support.js';
import { line, parseDays } from './report-line.js';
import { writeOut } from '../../printable.js';

interface InitCaFlags {
  domain: string;
  out: string;
  alg?: string;
  days?: string;
  json?: boolean;
}

/** Registers `fedlab certs init-ca`. */
export function registerCertsInitCa(certs: Command): void {
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
          printJson({
            dir: r.dir,
            domain: r.domain,
            alg: r.alg,
            serial: r.serial,
            not_before: r.notBefore.toISOString(),
            not_after: r.notAfter.toISOString(),
            files: r.paths,
          });
          return;
        }
        writeOut(
          `created the CA of ${r.domain} in ${r.dir}\n` +
            line('algorithm', r.alg) +
            line('valid until', r.notAfter.toISOString()) +
            line('certificate', r.paths.cert) +
            line('private key', `${r.paths.key} (mode 0600; keep it offline if you can)`),
        );
      }),
    );
}
