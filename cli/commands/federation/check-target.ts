/**
 * Whom `fedlab federation check` asks, and as whom: the slice authority (as
 * one of its administrators), each site's management authority (as that
 * site's administrator), each site's nodes (with a chain rooted at the nodes'
 * owner), and — for the fixes at sites — the slice authority's own identity
 * and its `MA → SA` chain per site. Built from the command's flags; the file
 * paths are kept so the fixes can be printed as commands.
 */
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isValidDomain } from '../../../services/core/identity/urn.js';
import type { TlsMaterial } from '../../../services/core/rpc/server.js';
import { checkAddress, tlsFrom } from '../../cli-support.js';
import { parseDuration } from '../../flag-values.js';
import { readChainFlag } from '../sliver/node-client.js';

/** An identity as files (for printed commands) and as TLS material (for calls). */
export interface Identity {
  readonly dir: string;
  readonly tls: TlsMaterial;
}

/** A chain as its file and its links. */
export interface ChainFile {
  readonly file: string;
  readonly chain: readonly string[];
}

/** One site to check. */
export interface SiteTarget {
  readonly domain: string;
  /** host:port of its management authority. */
  readonly address: string;
  /** The site's administrator. */
  readonly admin: Identity;
  /** A chain rooted at the nodes' owner (node.read, sliver.read, sliver.delete) and who holds it. */
  readonly nodes?: { readonly chain: ChainFile; readonly holder: Identity };
  /** The slice authority's MA → SA chain for this site (for releases). */
  readonly release?: ChainFile;
}

/** Everything a check needs. */
export interface CheckTarget {
  readonly sa: { readonly address: string; readonly serverUrn?: string; readonly admin: Identity };
  /** The slice authority's own identity, for releases at sites. */
  readonly saSelf?: Identity;
  readonly sites: readonly SiteTarget[];
  /** CA certificates file given for every server (printed into commands). */
  readonly caFile?: string;
  /** Deadline of each call (ms). */
  readonly deadlineMs: number;
  /** Work younger than this is in flight (ms). */
  readonly graceMs: number;
}

/** The flags of `fedlab federation check`. */
export interface CheckFlags {
  sa: string;
  saUrn?: string;
  tlsDir: string;
  ma: string[];
  siteTls: string[];
  nodeChain: string[];
  nodeTls: string[];
  saTlsDir?: string;
  siteChain: string[];
  ca?: string;
  grace?: string;
  timeout?: string;
}

/** `domain=value` pairs of a repeatable flag, each domain once. */
function byDomain(values: readonly string[], flag: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values) {
    const i = v.indexOf('=');
    const domain = i > 0 ? v.slice(0, i) : '';
    const value = i > 0 ? v.slice(i + 1) : '';
    if (!isValidDomain(domain) || !value) throw new InvalidArgumentError(`${flag} takes <domain>=<value>, got ${JSON.stringify(v)}`);
    if (out.has(domain)) throw new InvalidArgumentError(`${flag} names ${domain} twice`);
    out.set(domain, value);
  }
  return out;
}

/** Builds the target from the flags (bad input: INVALID_ARGUMENT naming the flag). */
export function checkTarget(flags: CheckFlags): CheckTarget {
  const ca = flags.ca;
  const identity = (dir: string): Identity => ({ dir, tls: tlsFrom({ tlsDir: dir, ...(ca ? { ca } : {}) }) });
  const chainFile = (file: string): ChainFile => ({ file, chain: readChainFlag(file) });
  const mas = byDomain(flags.ma, '--ma');
  if (mas.size === 0) throw new InvalidArgumentError('give each site to check with --ma <domain>=<host:port>');
  const siteTls = byDomain(flags.siteTls, '--site-tls');
  const nodeChains = byDomain(flags.nodeChain, '--node-chain');
  const nodeTls = byDomain(flags.nodeTls, '--node-tls');
  const siteChains = byDomain(flags.siteChain, '--site-chain');
  for (const [flag, m] of [
    ['--site-tls', siteTls],
    ['--node-chain', nodeChains],
    ['--node-tls', nodeTls],
    ['--site-chain', siteChains],
  ] as const)
    for (const d of m.keys()) if (!mas.has(d)) throw new InvalidArgumentError(`${flag} names ${d}, which no --ma gives`);
  const admin = identity(flags.tlsDir);
  const sites: SiteTarget[] = [...mas].map(([domain, address]) => {
    const siteAdmin = siteTls.has(domain) ? identity(siteTls.get(domain) as string) : admin;
    const nodeChain = nodeChains.get(domain);
    const holder = nodeTls.get(domain);
    const release = siteChains.get(domain);
    return {
      domain,
      address: checkAddress(address, '--ma'),
      admin: siteAdmin,
      ...(nodeChain ? { nodes: { chain: chainFile(nodeChain), holder: holder ? identity(holder) : siteAdmin } } : {}),
      ...(release ? { release: chainFile(release) } : {}),
    };
  });
  return {
    sa: { address: checkAddress(flags.sa, '--sa'), ...(flags.saUrn ? { serverUrn: flags.saUrn } : {}), admin },
    ...(flags.saTlsDir ? { saSelf: identity(flags.saTlsDir) } : {}),
    sites,
    ...(ca ? { caFile: ca } : {}),
    deadlineMs: flags.timeout ? parseDuration(flags.timeout, '--timeout') * 1000 : 10_000,
    graceMs: flags.grace ? parseDuration(flags.grace, '--grace') * 1000 : 30_000,
  };
}
