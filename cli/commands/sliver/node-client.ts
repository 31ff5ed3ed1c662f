/** How the `fedlab sliver` commands reach a sliver: its node manager (pinned to a node of the sliver's site), the caller's chain. */
import { isIP } from 'node:net';
import { connect, type PeerCertificate } from 'node:tls';
import type { Command } from 'commander';
import { InvalidArgumentError, UnavailableError } from '../../../services/core/errors.js';
import { isUrn, parseUrn } from '../../../services/core/identity/urn.js';
import { createClient } from '../../../services/core/rpc/client.js';
import type { TlsMaterial } from '../../../services/core/rpc/server.js';
import { NodeManagerService } from '../../../services/generated/fedlab/v1/node_manager.js';
import { checkAddress, readFlagFile, tlsFrom } from '../../cli-support.js';
import { parseDuration } from '../../flag-values.js';
import { withTlsFlags, type TlsFlags } from '../../remote.js';

/** The flags of a `fedlab sliver` command that calls a node manager. */
export interface NodeFlags extends TlsFlags {
  node: string;
  nodeUrn?: string;
  chain: string;
}

/** The flags of a `fedlab sliver` command on one sliver. */
export interface SliverFlags extends NodeFlags {
  sliver: string;
}

/** Reads the `--chain` file: one compact JWS per line, root first. */
export function readChainFlag(file: string): string[] {
  const links = readFlagFile(file, '--chain')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (links.length === 0) throw new InvalidArgumentError(`--chain ${file} holds no credential`);
  if (links.some((l) => !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(l)))
    throw new InvalidArgumentError(`--chain ${file}: every line must be one compact JWS`);
  return links;
}

/**
 * The node URN the node manager at `address` presents, read in a TLS handshake
 * that verifies its certificate against our CAs; it must be a node URN, of the
 * sliver's site when `siteDomain` is given. The gRPC client is then pinned to that URN.
 */
export function nodeUrnAt(address: string, tls: TlsMaterial, siteDomain: string | undefined, timeoutMs = 10_000): Promise<string> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  return new Promise((resolve, reject) => {
    // No SNI for an IP address (RFC 6066); the certificate is checked by URN below, not by name.
    const socket = connect({
      host,
      port,
      servername: isIP(host) ? '' : host,
      ca: tls.caCerts,
      cert: tls.cert,
      key: tls.key,
      ALPNProtocols: ['h2'],
      checkServerIdentity: () => undefined,
      rejectUnauthorized: true,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new UnavailableError(`the node manager at ${address} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const cert: PeerCertificate = socket.getPeerCertificate();
      socket.end();
      const urns = (cert.subjectaltname ?? '')
        .split(', ')
        .filter((s) => s.startsWith('URI:urn:fedlab:'))
        .map((s) => s.slice(4));
      const urn = urns.length === 1 ? (urns[0] as string) : '';
      if (!urn || !isUrn(urn) || parseUrn(urn).kind !== 'node' || (siteDomain !== undefined && parseUrn(urn).domain !== siteDomain)) {
        reject(
          new UnavailableError(
            `the server at ${address} is not a node manager${siteDomain === undefined ? '' : ` of ${siteDomain}`} (its certificate names ${urns.join(', ') || 'no URN'}); check --node, or pin it with --node-urn`,
          ),
        );
        return;
      }
      resolve(urn);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new UnavailableError(`cannot reach the node manager at ${address}: ${err.message}`));
    });
  });
}

/** A NodeManager client pinned to a node (of `siteDomain` when given), the caller's chain, and the call's timeout (s). */
export async function nodeConnection(flags: NodeFlags, siteDomain: string | undefined, defaultTimeoutS: number) {
  if (flags.nodeUrn !== undefined && (!isUrn(flags.nodeUrn) || parseUrn(flags.nodeUrn).kind !== 'node'))
    throw new InvalidArgumentError(`--node-urn must be a node URN, got ${JSON.stringify(flags.nodeUrn)}`);
  const address = checkAddress(flags.node, '--node');
  const chain = readChainFlag(flags.chain);
  const tls = tlsFrom(flags);
  const timeoutS = flags.timeout ? parseDuration(flags.timeout, '--timeout') : defaultTimeoutS;
  const serverUrn = flags.nodeUrn ?? (await nodeUrnAt(address, tls, siteDomain));
  return { client: createClient(NodeManagerService, { address, tls, serverUrn, deadlineMs: timeoutS * 1000 }), chain, timeoutS };
}

/** Checks `--sliver`: a sliver URN (bad input otherwise). */
export function checkSliverUrn(urn: string): string {
  if (!isUrn(urn) || parseUrn(urn).kind !== 'sliver')
    throw new InvalidArgumentError(`--sliver must be a sliver URN urn:fedlab:<site>:sliver:<name>, got ${JSON.stringify(urn)}`);
  return urn;
}

/** A NodeManager client pinned to the node the sliver is on, the caller's chain, and the call's timeout (s). */
export async function nodeClient(flags: SliverFlags, defaultTimeoutS: number) {
  return nodeConnection(flags, parseUrn(checkSliverUrn(flags.sliver)).domain, defaultTimeoutS);
}

const NODE_HELP = "the node manager's address (fedlab deployment show lists each sliver's)";
const NODE_URN_HELP = "pin the node manager's certificate to this URN (default: any node of the sliver's site)";
const CHAIN_HELP = "your chain: a slice credential (fedlab member delegate --out), or one rooted at the node's owner (its operator's)";

/** Adds {@link SliverFlags} to a command. */
export function withSliver(cmd: Command): Command {
  return withTlsFlags(
    cmd
      .requiredOption('--node <host:port>', NODE_HELP)
      .option('--node-urn <urn>', NODE_URN_HELP)
      .requiredOption('--sliver <urn>', 'the sliver')
      .requiredOption('--chain <file>', CHAIN_HELP),
  );
}

/** Adds {@link NodeFlags} to a command that names no sliver. */
export function withNode(cmd: Command): Command {
  return withTlsFlags(
    cmd
      .requiredOption('--node <host:port>', NODE_HELP)
      .option('--node-urn <urn>', "pin the node manager's certificate to this URN (default: any node our CAs vouch for)")
      .requiredOption('--chain <file>', CHAIN_HELP),
  );
}
