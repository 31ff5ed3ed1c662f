/**
 * The OpenSSH client configuration of a slice's slivers, from the slice's manifest (each sliver's
 * `ssh` login: the node's endpoint, its host key, the login name): one `Host` block per sliver and
 * the `known_hosts` lines of the nodes' host keys, so that the client checks each host key without
 * trusting it on first use (`StrictHostKeyChecking yes`, `HostKeyAlias` naming the node, which the
 * known_hosts lines name too). Pure: `fedlab sliver ssh-config` and `fedlab up` write what it returns.
 *
 * What a node reported goes into a file that ssh parses, so every value is checked against a strict
 * pattern first (a login name with a line break would add configuration); a sliver whose login does
 * not pass is left out, with the reason.
 */
import { resolve } from 'node:path';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { checkSshEndpoint } from '../../../services/core/identity/ssh-keys.js';
import { parseUrn } from '../../../services/core/identity/urn.js';
import type { Slice } from '../../../services/generated/fedlab/v1/slice_authority.js';

/** One sliver one can log in to. */
export interface SshHost {
  /** The `Host` alias: `<slice>-<node>` (with the node's domain when two nodes share a name). */
  readonly alias: string;
  readonly hostName: string;
  readonly port: number;
  readonly user: string;
  /** The name the node's host key is filed under in known_hosts. */
  readonly hostKeyAlias: string;
  /** `type base64` of the node's host key. */
  readonly hostKey: string;
  readonly fingerprint: string;
  readonly sliverUrn: string;
  readonly nodeUrn: string;
  /** The sliver's site (domain). */
  readonly site: string;
}

/** A sliver left out, and why. */
export interface SkippedSliver {
  readonly sliverUrn: string;
  readonly reason: string;
}

/** Where the generated block points ssh. */
export interface SshConfigOptions {
  /** The private key to log in with (`IdentityFile`, with `IdentitiesOnly yes`). */
  readonly identityFile?: string;
  /** The known_hosts file the lines are written to (`UserKnownHostsFile`); absent: ssh's default files. */
  readonly knownHostsFile?: string;
}

const LOGIN = /^[a-z0-9_][a-z0-9._-]{0,63}$/;
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** The slice's slivers with a usable SSH login, in site and node order, and those without one. */
export function sshHostsOf(slice: Slice): { hosts: SshHost[]; skipped: SkippedSliver[] } {
  const sliceName = parseUrn(slice.urn).name;
  const found: Omit<SshHost, 'alias'>[] = [];
  const skipped: SkippedSliver[] = [];
  for (const s of slice.slivers) {
    const login = s.ssh;
    if (!login?.endpoint?.address) {
      skipped.push({
        sliverUrn: s.urn,
        reason: 'its manifest has no SSH login (the node offers no SSH endpoint, or the sliver is not provisioned)',
      });
      continue;
    }
    let endpoint;
    try {
      endpoint = checkSshEndpoint(login.endpoint, 'ssh.endpoint');
    } catch (err) {
      skipped.push({ sliverUrn: s.urn, reason: `its SSH endpoint is malformed: ${(err as Error).message}` });
      continue;
    }
    let node;
    try {
      node = parseUrn(s.nodeUrn);
    } catch {
      skipped.push({ sliverUrn: s.urn, reason: `its node URN ${JSON.stringify(s.nodeUrn.slice(0, 120))} is malformed` });
      continue;
    }
    if (!LOGIN.test(login.username) || !NAME.test(node.name)) {
      skipped.push({ sliverUrn: s.urn, reason: `its login name ${JSON.stringify(login.username.slice(0, 80))} is not a plain user name` });
      continue;
    }
    const i = endpoint.address.lastIndexOf(':');
    found.push({
      hostName: endpoint.address.slice(0, i).replace(/^\[|\]$/g, ''),
      port: Number(endpoint.address.slice(i + 1)),
      user: login.username,
      hostKeyAlias: `fedlab-node.${node.name}.${node.domain}`,
      hostKey: endpoint.hostKey,
      fingerprint: endpoint.hostKeyFingerprint,
      sliverUrn: s.urn,
      nodeUrn: s.nodeUrn,
      site: node.domain,
    });
  }
  found.sort((a, b) => (a.site + ' ' + a.nodeUrn + ' ' + a.sliverUrn < b.site + ' ' + b.nodeUrn + ' ' + b.sliverUrn ? -1 : 1));
  // `<slice>-<node>`, with the node's domain when another site has a node of the same name.
  const shortCount = new Map<string, Set<string>>();
  for (const h of found) {
    const short = parseUrn(h.nodeUrn).name;
    shortCount.set(short, (shortCount.get(short) ?? new Set()).add(h.site));
  }
  const used = new Set<string>();
  const hosts = found.map((h) => {
    const short = parseUrn(h.nodeUrn).name;
    const base = (shortCount.get(short)?.size ?? 0) > 1 ? `${sliceName}-${short}.${h.site}` : `${sliceName}-${short}`;
    let alias = base;
    for (let n = 2; used.has(alias); n++) alias = `${base}-${n}`;
    used.add(alias);
    return { alias, ...h };
  });
  return { hosts, skipped };
}

/** A path as an ssh_config value: absolute, `%` escaped (ssh expands tokens in these), quoted. */
function pathValue(file: string, flag: string): string {
  const abs = resolve(file);
  if (/["\\\u0000-\u001f\u007f]/.test(abs))
    throw new InvalidArgumentError(`${flag} ${file}: the path has a quote, backslash or control character, which ssh_config cannot hold`);
  return `"${abs.replace(/%/g, '%%')}"`;
}

/** The ssh_config text: a comment naming the slice, then one `Host` block per sliver. */
export function renderSshConfig(sliceUrn: string, hosts: readonly SshHost[], options: SshConfigOptions = {}): string {
  const identity = options.identityFile !== undefined ? pathValue(options.identityFile, '--identity') : undefined;
  const known = options.knownHostsFile !== undefined ? pathValue(options.knownHostsFile, '--known-hosts') : undefined;
  const out = [`# SSH logins of the slivers of ${sliceUrn} (fedlab sliver ssh-config)`];
  for (const h of hosts) {
    out.push(
      '',
      `# ${h.sliverUrn} on ${h.nodeUrn}, host key ${h.fingerprint}`,
      `Host ${h.alias}`,
      `  HostName ${h.hostName}`,
      `  Port ${h.port}`,
      `  User ${h.user}`,
      ...(identity ? [`  IdentityFile ${identity}`, '  IdentitiesOnly yes'] : []),
      '  PreferredAuthentications publickey',
      ...(known ? [`  UserKnownHostsFile ${known}`] : []),
      '  StrictHostKeyChecking yes',
      `  HostKeyAlias ${h.hostKeyAlias}`,
    );
  }
  return `${out.join('\n')}\n`;
}

/** The known_hosts lines: one per node (`<HostKeyAlias> <type> <base64>`). */
export function knownHostsLines(hosts: readonly SshHost[]): string[] {
  const seen = new Map<string, string>();
  for (const h of hosts) seen.set(h.hostKeyAlias, `${h.hostKeyAlias} ${h.hostKey}`);
  return [...seen.values()];
}
