/** `fedlab cred verify`: a chain checked as a service would — the grant (exit 0), or the failing link and rule (exit 1). */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import {
  RevocationSet,
  isCredentialError,
  parseSignedRevocationList,
  verifyChain,
  type Grant,
  type Privilege,
} from '../../../services/core/credentials/index.js';
import { action, CliExit, EXIT_FAILURE, printJson } from '../../cli-support.js';
import { parseTime, repeatable, splitList } from '../../flag-values.js';
import { readChainFile, readIdentity } from './files.js';
import { formatLimits, formatTime } from './report-format.js';
import { loadTrust } from './trust.js';
import { writeOut } from '../../printable.js';

interface VerifyFlags {
  trust: string[];
  holderCert: string;
  priv?: string;
  target?: string;
  at?: string;
  anchor?: string[];
  revocations?: string[];
  json?: boolean;
}

function grantJson(g: Grant) {
  return {
    valid: true,
    holder: g.holder.urn,
    holder_key: g.holder.thumbprint,
    root_issuer: g.root.issuer,
    privileges: g.privileges,
    targets: g.targets,
    limits: g.limits,
    nbf: g.nbf,
    exp: g.exp,
    delegations_left: g.delegationsLeft,
    issuers: g.issuers,
    jtis: g.jtis,
    hashes: g.hashes,
  };
}

/** Registers `fedlab cred verify`. */
export function registerCredVerify(cred: Command): void {
  cred
    .command('verify')
    .description('verify a chain as a service would: exit 0 and the grant, or exit 1 and the failing link and rule')
    .argument('<file>', "chain file ('-' for standard input)")
    .requiredOption('--trust <path>', 'a trust bundle, or a directory of bundles (*.json); repeatable', repeatable)
    .requiredOption('--holder-cert <file>', 'the certificate of whoever presents the chain')
    .option('--priv <privilege>', 'the privilege the call needs')
    .option('--target <urn>', 'the object the call is on (a URN, or a pattern the grant must cover whole)')
    .option('--at <time>', 'verify at this time instead of now (RFC 3339 or epoch seconds)')
    .option(
      '--anchor <cert=targets>',
      "also trust this certificate's key to root chains over these targets, e.g. owner/cert.pem=urn:fedlab:plc.test:node:n1 (repeatable)",
      repeatable,
    )
    .option('--revocations <file>', 'a signed revocation list to consult (repeatable)', repeatable)
    .option('--json', 'print JSON')
    .action(
      action(async (file: string, flags: VerifyFlags) => {
        const chain = readChainFile(file);
        const trust = await loadTrust(flags.trust);
        for (const spec of flags.anchor ?? []) {
          const eq = spec.lastIndexOf('=');
          if (eq <= 0) throw new InvalidArgumentError(`--anchor takes CERT=TARGET[,TARGET], got ${JSON.stringify(spec)}`);
          const id = await readIdentity(spec.slice(0, eq));
          trust.addAnchor({ urn: id.urn, jwk: id.jwk as never, targets: splitList(spec.slice(eq + 1)) });
        }
        const revocations = new RevocationSet({ cache: null });
        for (const f of flags.revocations ?? []) {
          try {
            revocations.put(parseSignedRevocationList(readFileSync(f, 'utf8')));
          } catch (err) {
            throw new InvalidArgumentError(`${f}: ${(err as Error).message}`);
          }
        }
        const holder = await readIdentity(flags.holderCert);
        let grant: Grant;
        try {
          grant = verifyChain({
            chain,
            trust,
            holder: { urn: holder.urn, thumbprint: holder.thumbprint },
            privilege: (flags.priv ?? null) as Privilege | null,
            object: flags.target ?? null,
            now: flags.at ? parseTime(flags.at, '--at') : new Date(),
            revocations,
            cache: null,
          });
        } catch (err) {
          if (!isCredentialError(err)) throw err;
          if (flags.json) printJson({ valid: false, link: err.link, rule: err.rule, reason: err.reason });
          throw new CliExit(EXIT_FAILURE, `invalid: ${err.message}`);
        }
        if (flags.json) {
          printJson(grantJson(grant));
          return;
        }
        writeOut(
          [
            `valid: ${grant.holder.urn} holds a chain of ${grant.hashes.length} link${grant.hashes.length === 1 ? '' : 's'} rooted at ${grant.root.issuer}`,
            `  privileges  ${grant.privileges.join(', ')}`,
            `  targets     ${grant.targets.join(', ')}`,
            `  limits      ${formatLimits(grant.limits)}`,
            `  valid       ${formatTime(grant.nbf)} to ${formatTime(grant.exp)}`,
            `  delegation  ${grant.delegationsLeft === 0 ? 'no further delegation' : `${grant.delegationsLeft} more level${grant.delegationsLeft === 1 ? '' : 's'} allowed`}`,
            '',
          ].join('\n'),
        );
      }),
    );
}
