/**
 * What the `fedlab federation peer` commands share: where the peers directory is (`--config` of a
 * service, or `--peers-dir`), whose identity to dial with, and how a peer record is summarised.
 */
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import type { DialIdentity } from '../../../services/core/federation/bundle-client.js';
import type { PeerRecord } from '../../../services/core/federation/peers.js';
import { isUrn, isValidDomain, parseUrn } from '../../../services/core/identity/urn.js';
import { readFlagFile } from '../../cli-support.js';

/** Flags that locate the peers directory. */
export interface DirFlags {
  config?: string;
  peersDir?: string;
}

/** Flags of commands that also dial a peer. */
export interface DialFlags extends DirFlags {
  tlsDir?: string;
  cert?: string;
  key?: string;
  timeout?: string;
}

/** What a service config tells these commands: where the peers are, the service's domain and its TLS identity. */
export interface ServiceView {
  readonly peersDir: string;
  readonly domain?: string;
  readonly identity?: DialIdentity;
}

/** Reads the few fields of a service config these commands need (relative paths against the file's folder). */
export function serviceView(flags: DirFlags): ServiceView {
  if (flags.config && flags.peersDir) throw new InvalidArgumentError('give --config or --peers-dir, not both');
  if (flags.peersDir) return { peersDir: resolve(flags.peersDir) };
  if (!flags.config) throw new InvalidArgumentError("give --config SERVICE_CONFIG (a service's JSON config) or --peers-dir DIR");
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFlagFile(flags.config, '--config')) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err;
    throw new InvalidArgumentError(`--config ${flags.config} is not JSON`);
  }
  const base = dirname(resolve(flags.config));
  const at = (p: unknown): string | undefined => (typeof p === 'string' && p !== '' ? (isAbsolute(p) ? p : resolve(base, p)) : undefined);
  const fed = (raw.federation ?? {}) as Record<string, unknown>;
  const bundle = at(raw.trust_bundle);
  const peersDir = at(fed.peers_dir) ?? (bundle ? join(dirname(bundle), 'peers') : undefined);
  if (!peersDir) throw new InvalidArgumentError(`--config ${flags.config} names neither federation.peers_dir nor trust_bundle`);
  const domain = typeof raw.urn === 'string' && isUrn(raw.urn) ? parseUrn(raw.urn).domain : undefined;
  const tls = (raw.tls ?? {}) as Record<string, unknown>;
  const cert = at(tls.cert);
  const key = at(tls.key);
  return {
    peersDir,
    ...(domain ? { domain } : {}),
    ...(cert && key
      ? { identity: { cert: readFlagFile(cert, 'tls.cert of --config'), key: readFlagFile(key, 'tls.key of --config') } }
      : {}),
  };
}

/** The identity to dial with: `--tls-dir` or `--cert` + `--key`, else the service config's, else none. */
export function dialIdentity(flags: DialFlags, view: ServiceView): DialIdentity | undefined {
  if (flags.tlsDir)
    return {
      cert: readFlagFile(join(flags.tlsDir, 'cert.pem'), '--tls-dir'),
      key: readFlagFile(join(flags.tlsDir, 'key.pem'), '--tls-dir'),
    };
  if (flags.cert || flags.key) {
    if (!flags.cert || !flags.key) throw new InvalidArgumentError('give --cert and --key together');
    return { cert: readFlagFile(flags.cert, '--cert'), key: readFlagFile(flags.key, '--key') };
  }
  return view.identity;
}

/** A domain argument, checked. */
export function domainArg(domain: string): string {
  if (!isValidDomain(domain)) throw new InvalidArgumentError(`${JSON.stringify(domain.slice(0, 80))} is not a lower-case DNS name`);
  return domain;
}

/** A peer record as JSON for scripts. */
export function summary(r: PeerRecord): Record<string, unknown> {
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

/** Adds {@link DirFlags} to a command. */
export function withDir(cmd: Command): Command {
  return cmd
    .option(
      '--config <file>',
      "a service's JSON config: its federation.peers_dir (default: peers/ beside its trust_bundle), domain and TLS identity",
    )
    .option('--peers-dir <dir>', 'the peers directory itself');
}

/** Adds {@link DialFlags} to a command. */
export function withDial(cmd: Command): Command {
  return withDir(cmd)
    .option('--tls-dir <dir>', 'present key.pem and cert.pem from this directory when dialing (default: the --config service’s)')
    .option('--cert <file>', 'certificate to present when dialing (PEM)')
    .option('--key <file>', 'its private key (PEM)')
    .option('--timeout <duration>', 'deadline of each call, e.g. 10s (default 10s)');
}
