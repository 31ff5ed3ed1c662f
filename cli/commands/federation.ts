/**
 * `fedlab federation peer add|ls|show|rm|refresh`: a domain's peers, kept in
 * the peers directory its services share (`federation.peers_dir`; by default
 * `peers/` beside the service's `trust_bundle`). `add` fetches the peer's
 * bundle with Federation.GetBundle, authenticated by the fingerprint the
 * peer's admin gave out of band, and stores it only when everything checks;
 * running services pick changes up without a restart.
 * Exit codes: 0 done; 1 the peer refused, could not be reached, or served a
 * bundle that does not match the pin; 2 bad input.
 */
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError, NotFoundError } from '../../services/core/errors.js';
import { pinPeer, type DialIdentity } from '../../services/core/federation/bundle-client.js';
import { PeerDirectory, type PeerRecord } from '../../services/core/federation/peers.js';
import { BundleRefresher } from '../../services/core/federation/refresher.js';
import { isUrn, isValidDomain, parseUrn } from '../../services/core/identity/urn.js';
import { createLogger } from '../../services/core/log.js';
import { action, CliExit, EXIT_FAILURE, printJson, readFlagFile } from '../cli-support.js';
import { parseDuration } from './cred.js';

interface DirFlags {
  config?: string;
  peersDir?: string;
}

interface DialFlags extends DirFlags {
  tlsDir?: string;
  cert?: string;
  key?: string;
  timeout?: string;
}

/** What a service config tells this command: where the peers are, the service's domain and its TLS identity. */
interface ServiceView {
  readonly peersDir: string;
  readonly domain?: string;
  readonly identity?: DialIdentity;
}

/** Reads the few fields of a service config this command needs (relative paths against the file's folder). */
function serviceView(f: DirFlags): ServiceView {
  if (f.config && f.peersDir) throw new InvalidArgumentError('give --config or --peers-dir, not both');
  if (f.peersDir) return { peersDir: resolve(f.peersDir) };
  if (!f.config) throw new InvalidArgumentError("give --config SERVICE_CONFIG (a service's JSON config) or --peers-dir DIR");
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFlagFile(f.config, '--config')) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err;
    throw new InvalidArgumentError(`--config ${f.config} is not JSON`);
  }
  const base = dirname(resolve(f.config));
  const at = (p: unknown): string | undefined => (typeof p === 'string' && p !== '' ? (isAbsolute(p) ? p : resolve(base, p)) : undefined);
  const fed = (raw.federation ?? {}) as Record<string, unknown>;
  const bundle = at(raw.trust_bundle);
  const peersDir = at(fed.peers_dir) ?? (bundle ? join(dirname(bundle), 'peers') : undefined);
  if (!peersDir) throw new InvalidArgumentError(`--config ${f.config} names neither federation.peers_dir nor trust_bundle`);
  const domain = typeof raw.urn === 'string' && isUrn(raw.urn) ? parseUrn(raw.urn).domain : undefined;
  const tls = (raw.tls ?? {}) as Record<string, unknown>;
  const cert = at(tls.cert);
  const key = at(tls.key);
  return {
    peersDir,
    ...(domain ? { domain } : {}),
    ...(cert && key ? { identity: { cert: readFlagFile(cert, 'tls.cert of --config'), key: readFlagFile(key, 'tls.key of --config') } } : {}),
  };
}

/** The identity to dial with: `--tls-dir` or `--cert` + `--key`, else the service config's, else none. */
function dialIdentity(f: DialFlags, view: ServiceView): DialIdentity | undefined {
  if (f.tlsDir) return { cert: readFlagFile(join(f.tlsDir, 'cert.pem'), '--tls-dir'), key: readFlagFile(join(f.tlsDir, 'key.pem'), '--tls-dir') };
  if (f.cert || f.key) {
    if (!f.cert || !f.key) throw new InvalidArgumentError('give --cert and --key together');
    return { cert: readFlagFile(f.cert, '--cert'), key: readFlagFile(f.key, '--key') };
  }
  return view.identity;
}

function domainArg(domain: string): string {
  if (!isValidDomain(domain)) throw new InvalidArgumentError(`${JSON.stringify(domain.slice(0, 80))} is not a lower-case DNS name`);
  return domain;
}

function summary(r: PeerRecord): Record<string, unknown> {
  return {
    domain: r.domain,
    endpoint: r.endpoint,
    pinned_fingerprint: r.pinned_fingerprint,
    pinned_at: r.pinned_at,
    fingerprint: r.fingerprint,
    serial: r.bundle.serial,
    accepted_at: r.accepted_at,
    ca_certs: r.bundle.ca_certs.length,
    authorities: r.bundle.authorities.map((a) => ({ urn: a.urn, kid: a.kid })),
    revocation_version: r.bundle.revocation_version,
    last_refresh: r.last_refresh ?? null,
  };
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

function withDir(cmd: Command): Command {
  return cmd
    .option('--config <file>', "a service's JSON config: its federation.peers_dir (default: peers/ beside its trust_bundle), domain and TLS identity")
    .option('--peers-dir <dir>', 'the peers directory itself');
}

function withDial(cmd: Command): Command {
  return withDir(cmd)
    .option('--tls-dir <dir>', 'present key.pem and cert.pem from this directory when dialing (default: the --config service’s)')
    .option('--cert <file>', 'certificate to present when dialing (PEM)')
    .option('--key <file>', 'its private key (PEM)')
    .option('--timeout <duration>', 'deadline of each call, e.g. 10s (default 10s)');
}

/** Registers `fedlab federation`. */
export function registerFederationCommand(program: Command): void {
  const federation = program.command('federation').description('peering with other domains (each with its own CA)');
  const peer = federation.command('peer').description("the domains this domain's services trust, each pinned by its bundle fingerprint");

  withDial(peer.command('add').description("fetch a peer's bundle, check it against the pinned fingerprint, and store it (re-running it re-pins)"))
    .requiredOption('--domain <domain>', "the peer's domain (e.g. emu.test)")
    .requiredOption('--endpoint <host:port>', "a server of the peer serving Federation.GetBundle (its public bundle endpoint, or its mutual-TLS port if it already trusts you)")
    .requiredOption('--fingerprint <sha256>', "the peer bundle's fingerprint, given by its admin out of band (`fedlab certs bundle` prints it)")
    .option('--json', 'print JSON')
    .action(
      action(async (f: DialFlags & { domain: string; endpoint: string; fingerprint: string; json?: boolean }) => {
        const view = serviceView(f);
        const identity = dialIdentity(f, view);
        const record = await pinPeer({
          domain: domainArg(f.domain),
          endpoint: f.endpoint,
          fingerprint: f.fingerprint,
          ...(identity ? { identity } : {}),
          ...(view.domain ? { ownDomain: view.domain } : {}),
          deadlineMs: f.timeout ? parseDuration(f.timeout, '--timeout') * 1000 : 10_000,
        });
        const dir = new PeerDirectory(view.peersDir);
        const before = await dir.get(record.domain).catch(() => undefined);
        await dir.put(record);
        if (f.json) printJson({ ...summary(record), peers_dir: view.peersDir, repinned: before !== undefined });
        else {
          process.stdout.write(
            `${before ? 're-pinned' : 'peered with'} ${record.domain}: bundle ${record.fingerprint} (serial ${record.bundle.serial}, ${record.bundle.ca_certs.length} CA certificate(s), ${record.bundle.authorities.length} authorit${record.bundle.authorities.length === 1 ? 'y' : 'ies'})\n` +
              `stored in ${view.peersDir}; running services pick it up within their reload interval\n`,
          );
        }
      }),
    );

  withDir(peer.command('ls').description('list the peered domains'))
    .option('--json', 'print JSON')
    .action(
      action(async (f: DirFlags & { json?: boolean }) => {
        const view = serviceView(f);
        const { records, errors } = await new PeerDirectory(view.peersDir).list();
        if (f.json) {
          printJson({ peers_dir: view.peersDir, peers: records.map(summary), unreadable: errors });
          return;
        }
        if (records.length === 0) process.stdout.write(`no peers in ${view.peersDir}\n`);
        else {
          const rows = [['DOMAIN', 'ENDPOINT', 'SERIAL', 'FINGERPRINT', 'LAST REFRESH'], ...records.map((r) => [r.domain, r.endpoint, String(r.bundle.serial), r.fingerprint, r.last_refresh ? `${r.last_refresh.result} ${r.last_refresh.at}` : 'never'])];
          process.stdout.write(`${table(rows)}\n`);
        }
        for (const e of errors) process.stderr.write(`fedlab: ${e.error} (not trusted)\n`);
      }),
    );

  withDir(peer.command('show').description("one peer's record: pin, trusted bundle, authorities, last refresh").argument('<domain>'))
    .option('--json', 'print JSON')
    .action(
      action(async (domain: string, f: DirFlags & { json?: boolean }) => {
        const view = serviceView(f);
        const r = await new PeerDirectory(view.peersDir).get(domainArg(domain));
        if (!r) throw new NotFoundError(`${domain} is not peered in ${view.peersDir}`);
        if (f.json) {
          printJson({ ...summary(r), ca_certs: r.bundle.ca_certs });
          return;
        }
        const lines = [
          `domain              ${r.domain}`,
          `endpoint            ${r.endpoint}`,
          `pinned              ${r.pinned_fingerprint} at ${r.pinned_at}`,
          `trusted bundle      ${r.fingerprint} (serial ${r.bundle.serial}, accepted ${r.accepted_at})`,
          `CA certificates     ${r.bundle.ca_certs.length}`,
          `authorities         ${r.bundle.authorities.map((a) => `${a.urn} (${a.kid})`).join('\n                    ') || 'none'}`,
          `revocation version  ${r.bundle.revocation_version}`,
          `last refresh        ${r.last_refresh ? `${r.last_refresh.result} at ${r.last_refresh.at}${r.last_refresh.fingerprint ? ` (${r.last_refresh.fingerprint})` : ''}${r.last_refresh.detail ? `: ${r.last_refresh.detail}` : ''}` : 'never'}`,
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      }),
    );

  withDir(peer.command('rm').description('stop trusting a peered domain (running services drop it within their reload interval)').argument('<domain>'))
    .action(
      action(async (domain: string, f: DirFlags) => {
        const view = serviceView(f);
        const removed = await new PeerDirectory(view.peersDir).remove(domainArg(domain));
        if (!removed) throw new NotFoundError(`${domain} is not peered in ${view.peersDir}`);
        process.stdout.write(`removed ${domain} from ${view.peersDir}\n`);
      }),
    );

  withDial(peer.command('refresh').description("refresh peers' bundles now (a changed bundle is accepted only if it chains from the trusted one)").argument('[domain]'))
    .option('--json', 'print JSON')
    .action(
      action(async (domain: string | undefined, f: DialFlags & { json?: boolean }) => {
        const view = serviceView(f);
        const identity = dialIdentity(f, view);
        const dir = new PeerDirectory(view.peersDir);
        const records = domain ? [await dir.get(domainArg(domain))].filter((r): r is PeerRecord => r !== undefined) : (await dir.list()).records;
        if (domain && records.length === 0) throw new NotFoundError(`${domain} is not peered in ${view.peersDir}`);
        const refresher = new BundleRefresher({
          peersDir: view.peersDir,
          log: createLogger({ level: 'silent' }),
          ...(identity ? { identity } : {}),
          intervalMs: 0,
          deadlineMs: f.timeout ? parseDuration(f.timeout, '--timeout') * 1000 : 10_000,
        });
        const results = [];
        for (const r of records) results.push({ domain: r.domain, ...(await refresher.refreshOne(r)) });
        if (f.json) printJson(results);
        else for (const r of results) process.stdout.write(`${r.domain}: ${r.result}${r.fingerprint ? ` ${r.fingerprint}` : ''}${r.detail ? ` (${r.detail})` : ''}\n`);
        if (results.some((r) => r.result === 'refused' || r.result === 'unreachable')) throw new CliExit(EXIT_FAILURE, 'some peers were not refreshed; see above');
      }),
    );
}
