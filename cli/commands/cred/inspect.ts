/** `fedlab cred inspect`: each link of a chain file (no signature or trust check: that is `verify`). */
import type { Command } from 'commander';
import { parseCredential, type ParsedCredential } from '../../../services/core/credentials/index.js';
import { action, printJson } from '../../cli-support.js';
import { readChainFile } from './files.js';
import { formatLimits, formatTime } from './report-format.js';
import { writeOut } from '../../printable.js';

function linkJson(p: ParsedCredential, i: number) {
  const c = p.claims;
  return {
    link: i,
    jti: c.jti,
    issuer: c.iss,
    holder: c.sub,
    holder_key: p.holderKid,
    signing_key: p.header.kid,
    alg: p.header.alg,
    privileges: c.priv,
    targets: c.tgt,
    limits: c.lim,
    dlg: c.dlg,
    iat: c.iat,
    nbf: c.nbf,
    exp: c.exp,
    prf: c.prf ?? null,
    hash: p.hash,
  };
}

/** Registers `fedlab cred inspect`. */
export function registerCredInspect(cred: Command): void {
  cred
    .command('inspect')
    .description('show each link of a chain file (does not verify signatures or trust: use `fedlab cred verify`)')
    .argument('<file>', "chain file ('-' for standard input)")
    .option('--json', 'print JSON')
    .action(
      action((file: string, flags: { json?: boolean }) => {
        const chain = readChainFile(file);
        const links = chain.map((t, i) => parseCredential(t, i));
        if (flags.json) {
          printJson(links.map(linkJson));
          return;
        }
        const out: string[] = [];
        links.forEach((p, i) => {
          const c = p.claims;
          out.push(`link ${i}${i === 0 ? ' (root)' : ''}${i === links.length - 1 ? ' (leaf)' : ''}`);
          out.push(`  id          ${c.jti}`);
          out.push(`  issuer      ${c.iss} (key ${p.header.kid}, ${p.header.alg})`);
          out.push(`  holder      ${c.sub} (key ${p.holderKid})`);
          out.push(`  privileges  ${c.priv.join(', ')}`);
          out.push(`  targets     ${c.tgt.join(', ')}`);
          out.push(`  limits      ${formatLimits(c.lim)}${i > 0 ? ' (absent ones inherited)' : ''}`);
          out.push(`  valid       ${formatTime(c.nbf)} to ${formatTime(c.exp)}`);
          out.push(`  delegation  ${c.dlg === 0 ? 'no further delegation' : `${c.dlg} more level${c.dlg === 1 ? '' : 's'} allowed`}`);
          out.push(`  hash        ${p.hash}`);
          if (i < links.length - 1) out.push('');
        });
        writeOut(`${out.join('\n')}\n`);
      }),
    );
}
