/**
 * `fedlab cred issue|delegate|inspect|verify|revoke`: delegation credentials
 * offline. A chain file holds one compact JWS per line, root first. Exit
 * codes: 0 done (or the chain is valid); 1 refused (an invalid chain, a
 * delegation wider than its parent); 2 bad input (a missing file, a malformed
 * flag).
 */
import { createPublicKey, X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Command } from 'commander';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { identityFromCertificate, parseCertificate } from '../../services/core/identity/certificate.js';
import { parsePrivateKeyPem } from '../../services/core/identity/keys.js';
import { parseTrustBundle } from '../../services/core/identity/trust-bundle.js';
import {
  LIMIT_KEYS,
  RevocationSet,
  TrustStore,
  delegate,
  emptyRevocationList,
  isCredentialError,
  issueRoot,
  parseCredential,
  parseSignedRevocationList,
  signRevocationList,
  thumbprintOf,
  toPublicJwk,
  verifyChain,
  withRevocation,
  type Grant,
  type Limits,
  type ParsedCredential,
  type Privilege,
  type RevocationEntry,
} from '../../services/core/credentials/index.js';
import { action, CliExit, EXIT_FAILURE, printJson, splitList } from '../cli-support.js';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Parses `30d`, `12h`, `90m`, `45s`, `2w` into seconds. */
export function parseDuration(value: string, flag = '--ttl'): number {
  const m = /^([0-9]+)([smhdw])$/.exec(value.trim());
  const n = m ? Number(m[1]) * (UNITS[m[2] as string] as number) : NaN;
  if (!m || !Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`${flag} must be a positive duration such as 45s, 90m, 12h, 30d or 2w, got ${JSON.stringify(value)}`);
  return n;
}

/** Parses `slivers=10,mem_mb=512`. */
export function parseLimits(value: string | undefined): Limits {
  const out: Record<string, number> = {};
  for (const item of splitList(value)) {
    const m = /^([a-z_]+)=([0-9]+)$/.exec(item);
    if (!m || !(LIMIT_KEYS as readonly string[]).includes(m[1] as string) || !Number.isSafeInteger(Number(m[2]))) {
      throw new InvalidArgumentError(`--lim takes key=value pairs with keys ${LIMIT_KEYS.join(', ')} and whole numbers, got ${JSON.stringify(item)}`);
    }
    out[m[1] as string] = Number(m[2]);
  }
  return out;
}

/** Parses an RFC 3339 time or seconds since the epoch. */
export function parseTime(value: string, flag: string): Date {
  const d = /^[0-9]+$/.test(value) ? new Date(Number(value) * 1000) : new Date(value);
  if (Number.isNaN(d.getTime()) || !/^[0-9]+$|^\d{4}-\d{2}-\d{2}/.test(value)) {
    throw new InvalidArgumentError(`${flag} must be an RFC 3339 time (2026-05-01T12:00:00Z) or seconds since the epoch, got ${JSON.stringify(value)}`);
  }
  return d;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...splitList(value)];
}

function repeat(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function readText(file: string): string {
  return file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
}

/** Reads a chain file: one compact JWS per line, root first; blank lines are ignored. */
export function readChainFile(file: string): string[] {
  const links = readText(file)
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (links.length === 0) throw new InvalidArgumentError(`${file} holds no credential (a chain file has one compact JWS per line, root first)`);
  return links;
}

function readKey(file: string) {
  return parsePrivateKeyPem(readFileSync(file), file);
}

async function readIdentity(file: string) {
  return identityFromCertificate(parseCertificate(readFileSync(file), file));
}

/** The issuer's URN for a root: from --issuer-cert, or the cert.pem beside the key (as `fedlab certs issue` lays them out). */
async function issuerUrn(keyFile: string, issuerCert: string | undefined, key: ReturnType<typeof readKey>): Promise<string> {
  const certFile = issuerCert ?? join(dirname(keyFile), 'cert.pem');
  let cert: X509Certificate;
  try {
    cert = parseCertificate(readFileSync(certFile), certFile);
  } catch (err) {
    if (issuerCert === undefined) {
      throw new InvalidArgumentError(`cannot tell who issues: no certificate beside ${basename(keyFile)} (${certFile}); give --issuer-cert`);
    }
    throw err;
  }
  if (!cert.publicKey.equals(createPublicKey(key))) throw new InvalidArgumentError(`${certFile} does not certify the key in ${keyFile}`);
  return (await identityFromCertificate(cert)).urn;
}

function writeOut(file: string | undefined, chain: readonly string[]): void {
  const text = `${chain.join('\n')}\n`;
  if (!file) {
    process.stdout.write(text);
    return;
  }
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
  process.stdout.write(`wrote a chain of ${chain.length} link${chain.length === 1 ? '' : 's'} to ${file}\n`);
}

/** Loads trust from bundle files or directories of bundles (every *.json in a directory must be a bundle). */
async function loadTrust(paths: readonly string[]): Promise<TrustStore> {
  const trust = new TrustStore();
  for (const p of paths) {
    const files = statSync(p).isDirectory()
      ? readdirSync(p)
          .filter((f) => f.endsWith('.json'))
          .sort()
          .map((f) => join(p, f))
      : [p];
    for (const f of files) {
      let bundle;
      try {
        bundle = await parseTrustBundle(readFileSync(f, 'utf8'));
      } catch (err) {
        throw new InvalidArgumentError(`${f}: ${(err as Error).message}`);
      }
      if (trust.bundle(bundle.domain)) throw new InvalidArgumentError(`two trust bundles for ${bundle.domain} (${f}); give one per domain`);
      trust.addBundle(bundle);
    }
  }
  return trust;
}

function fmtTime(s: number): string {
  return new Date(s * 1000).toISOString().replace('.000Z', 'Z');
}

function fmtLimits(lim: Limits): string {
  const parts = LIMIT_KEYS.filter((k) => lim[k] !== undefined).map((k) => `${k}=${lim[k] as number}`);
  return parts.length > 0 ? parts.join(' ') : 'none';
}

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

interface IssueFlags {
  key: string;
  subjectCert: string;
  target?: string[];
  priv?: string;
  dlg?: string;
  ttl?: string;
  lim?: string;
  issuerCert?: string;
  notBefore?: string;
  out?: string;
}

function dlgFlag(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v)) throw new InvalidArgumentError(`--dlg must be a whole number (0: no further delegation), got ${JSON.stringify(v)}`);
  return Number(v);
}

function common(flags: IssueFlags) {
  return {
    ...(flags.dlg !== undefined ? { dlg: dlgFlag(flags.dlg) as number } : {}),
    ...(flags.ttl !== undefined ? { ttlSeconds: parseDuration(flags.ttl) } : {}),
    ...(flags.lim !== undefined ? { limits: parseLimits(flags.lim) } : {}),
    ...(flags.notBefore !== undefined ? { notBefore: parseTime(flags.notBefore, '--not-before') } : {}),
  };
}

/** Registers `fedlab cred`. */
export function registerCredCommand(program: Command): void {
  const cred = program.command('cred').description('issue, delegate, inspect, verify and revoke delegation credentials (chain files: one compact JWS per line, root first)');

  cred
    .command('issue')
    .description('issue a root credential, signed with your key, to the holder of a certificate')
    .requiredOption('--key <file>', "the issuer's private key (PEM); its certificate is looked up as cert.pem beside it")
    .requiredOption('--subject-cert <file>', "the holder's certificate (its URN and key go into the credential)")
    .requiredOption('--target <urn>', 'target: an exact URN, urn:fedlab:<domain>:<kind>:* or urn:fedlab:<domain>:* (repeat or comma-separate)', collect)
    .requiredOption('--priv <list>', 'privileges, comma-separated (e.g. sliver.create,sliver.delete)')
    .option('--dlg <n>', 'how many more delegations may follow (default 0)')
    .option('--ttl <duration>', 'lifetime such as 12h, 30d, 2w (default 30d)')
    .option('--lim <list>', `resource caps, e.g. slivers=10,mem_mb=512 (keys: ${LIMIT_KEYS.join(', ')})`)
    .option('--issuer-cert <file>', "the issuer's certificate, when it is not cert.pem beside the key")
    .option('--not-before <time>', 'start of validity (RFC 3339 or epoch seconds; default now)')
    .option('--out <file>', 'write the chain file here instead of standard output')
    .action(
      action(async (flags: IssueFlags) => {
        const key = readKey(flags.key);
        const issuer = await issuerUrn(flags.key, flags.issuerCert, key);
        const subject = await readIdentity(flags.subjectCert);
        const issued = await issueRoot({
          key,
          issuer,
          subject: subject.urn,
          subjectKey: subject.jwk as never,
          targets: flags.target ?? [],
          privileges: splitList(flags.priv),
          ...common(flags),
        });
        writeOut(flags.out, issued.chain);
      }),
    );

  cred
    .command('delegate')
    .description('delegate the leaf of a chain to the holder of a certificate; prints the child chain')
    .requiredOption('--chain <file>', "the parent chain file ('-' for standard input)")
    .requiredOption('--key <file>', "your private key: the key the parent's leaf was issued to")
    .requiredOption('--subject-cert <file>', "the new holder's certificate")
    .option('--priv <list>', "privileges to pass on (default: all of the parent's)")
    .option('--target <urn>', "targets to pass on (default: the parent's; repeat or comma-separate)", collect)
    .option('--dlg <n>', "further delegations allowed (default: the parent's minus one)")
    .option('--ttl <duration>', "lifetime such as 12h or 7d (default: until the parent expires)")
    .option('--lim <list>', 'resource caps, at most the parent\'s (e.g. slivers=10,mem_mb=512)')
    .option('--not-before <time>', 'start of validity (default now)')
    .option('--out <file>', 'write the chain file here instead of standard output')
    .action(
      action(async (flags: IssueFlags & { chain: string }) => {
        const parent = readChainFile(flags.chain);
        const key = readKey(flags.key);
        const subject = await readIdentity(flags.subjectCert);
        const issued = await delegate(parent, {
          key,
          subject: subject.urn,
          subjectKey: subject.jwk as never,
          ...(flags.priv !== undefined ? { privileges: splitList(flags.priv) } : {}),
          ...(flags.target !== undefined ? { targets: flags.target } : {}),
          ...common(flags),
        });
        writeOut(flags.out, issued.chain);
      }),
    );

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
          out.push(`  limits      ${fmtLimits(c.lim)}${i > 0 ? ' (absent ones inherited)' : ''}`);
          out.push(`  valid       ${fmtTime(c.nbf)} to ${fmtTime(c.exp)}`);
          out.push(`  delegation  ${c.dlg === 0 ? 'no further delegation' : `${c.dlg} more level${c.dlg === 1 ? '' : 's'} allowed`}`);
          out.push(`  hash        ${p.hash}`);
          if (i < links.length - 1) out.push('');
        });
        process.stdout.write(`${out.join('\n')}\n`);
      }),
    );

  cred
    .command('verify')
    .description('verify a chain as a service would: exit 0 and the grant, or exit 1 and the failing link and rule')
    .argument('<file>', "chain file ('-' for standard input)")
    .requiredOption('--trust <path>', 'a trust bundle, or a directory of bundles (*.json); repeatable', repeat)
    .requiredOption('--holder-cert <file>', 'the certificate of whoever presents the chain')
    .option('--priv <privilege>', 'the privilege the call needs')
    .option('--target <urn>', 'the object the call is on (a URN, or a pattern the grant must cover whole)')
    .option('--at <time>', 'verify at this time instead of now (RFC 3339 or epoch seconds)')
    .option('--anchor <cert=targets>', "also trust this certificate's key to root chains over these targets, e.g. owner/cert.pem=urn:fedlab:plc.test:node:n1 (repeatable)", repeat)
    .option('--revocations <file>', 'a signed revocation list to consult (repeatable)', repeat)
    .option('--json', 'print JSON')
    .action(
      action(
        async (
          file: string,
          flags: { trust: string[]; holderCert: string; priv?: string; target?: string; at?: string; anchor?: string[]; revocations?: string[]; json?: boolean },
        ) => {
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
          process.stdout.write(
            [
              `valid: ${grant.holder.urn} holds a chain of ${grant.hashes.length} link${grant.hashes.length === 1 ? '' : 's'} rooted at ${grant.root.issuer}`,
              `  privileges  ${grant.privileges.join(', ')}`,
              `  targets     ${grant.targets.join(', ')}`,
              `  limits      ${fmtLimits(grant.limits)}`,
              `  valid       ${fmtTime(grant.nbf)} to ${fmtTime(grant.exp)}`,
              `  delegation  ${grant.delegationsLeft === 0 ? 'no further delegation' : `${grant.delegationsLeft} more level${grant.delegationsLeft === 1 ? '' : 's'} allowed`}`,
              '',
            ].join('\n'),
          );
        },
      ),
    );

  cred
    .command('revoke')
    .description('add a credential (or a key) to your signed revocation list file, creating it if needed')
    .option('--jti <id>', 'the credential id to revoke (see `fedlab cred inspect`)')
    .option('--thumbprint <kid>', 'revoke a key instead: its RFC 7638 thumbprint')
    .requiredOption('--list <file>', 'the revocation list file (a compact JWS signed with --key)')
    .requiredOption('--key <file>', "the list owner's private key (the issuer's)")
    .option('--reason <text>', 'why (kept in the list)', 'unspecified')
    .option('--issuer <urn>', "the owner's URN, recorded in a new list")
    .option('--json', 'print JSON')
    .action(
      action((flags: { jti?: string; thumbprint?: string; list: string; key: string; reason: string; issuer?: string; json?: boolean }) => {
        if ((flags.jti === undefined) === (flags.thumbprint === undefined)) throw new InvalidArgumentError('give exactly one of --jti or --thumbprint');
        const key = readKey(flags.key);
        let list;
        let text: string | undefined;
        try {
          text = readFileSync(flags.list, 'utf8');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
        if (text === undefined) list = emptyRevocationList(key, flags.issuer);
        else {
          list = parseSignedRevocationList(text);
          if (list.kid !== thumbprintOf(toPublicJwk(key))) {
            throw new InvalidArgumentError(`${flags.list} is the list of key ${list.kid}${list.iss ? ` (${list.iss})` : ''}; sign it with that key`);
          }
        }
        const time = Math.floor(Date.now() / 1000);
        const entry: RevocationEntry = flags.jti !== undefined ? { jti: flags.jti, reason: flags.reason, time } : { kid: flags.thumbprint as string, reason: flags.reason, time };
        const next = withRevocation(list, entry);
        if (next !== list || text === undefined) {
          const tmp = join(dirname(flags.list), `.${basename(flags.list)}.${process.pid}.tmp`);
          writeFileSync(tmp, `${signRevocationList(next, key)}\n`, { mode: 0o644 });
          renameSync(tmp, flags.list);
        }
        const what = flags.jti !== undefined ? `credential ${flags.jti}` : `key ${flags.thumbprint as string}`;
        if (flags.json) printJson({ revoked: flags.jti ?? flags.thumbprint, list: flags.list, version: next.version, entries: next.entries.length, changed: next !== list });
        else process.stdout.write(next === list ? `${what} was already revoked (list version ${next.version})\n` : `revoked ${what}; ${flags.list} is now version ${next.version} with ${next.entries.length} entr${next.entries.length === 1 ? 'y' : 'ies'}\n`);
      }),
    );
}
