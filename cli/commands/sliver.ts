/**
 * `fedlab sliver exec|logs`: a slice's provider or member, directly against a
 * node manager, with a slice credential chain file (`fedlab member delegate`)
 * held by the caller's own certificate. `exec` streams the command's output
 * and exits with its exit code; `logs` prints the last output lines the node
 * manager kept for the sliver (GetSliverOutput).
 * Exit codes: exec — the command's own (128 + n when killed by signal n);
 * otherwise 0 done, 1 refused or unreachable, 2 bad input.
 */
import { constants } from 'node:os';
import { isIP } from 'node:net';
import { connect, type PeerCertificate } from 'node:tls';
import { Command } from 'commander';
import { InvalidArgumentError, UnavailableError } from '../../services/core/errors.js';
import { isUrn, parseUrn } from '../../services/core/identity/urn.js';
import { createClient } from '../../services/core/rpc/client.js';
import type { TlsMaterial } from '../../services/core/rpc/server.js';
import { NodeManagerService } from '../../services/generated/fedlab/v1/node_manager.js';
import { action, checkAddress, printJson, readFlagFile, tlsFrom } from '../cli-support.js';
import { parseDuration } from './cred.js';
import { envFrom, withTlsFlags, type TlsFlags } from './deploy.js';
import { refused } from '../remote.js';

interface SliverFlags extends TlsFlags {
  node: string;
  nodeUrn?: string;
  sliver: string;
  chain: string;
}

/** Reads a chain file: one compact JWS per line, root first. */
export function readChainFile(file: string): string[] {
  const links = readFlagFile(file, '--chain')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (links.length === 0) throw new InvalidArgumentError(`--chain ${file} holds no credential`);
  if (links.some((l) => !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(l))) throw new InvalidArgumentError(`--chain ${file}: every line must be one compact JWS`);
  return links;
}

/**
 * The node URN the node manager at `address` presents, read in a TLS handshake
 * that verifies its certificate against our CAs; it must be a node of the
 * sliver's site. The gRPC client is then pinned to that URN.
 */
export function nodeUrnAt(address: string, tls: TlsMaterial, siteDomain: string, timeoutMs = 10_000): Promise<string> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  return new Promise((resolve, reject) => {
    // No SNI for an IP address (RFC 6066); the certificate is checked by URN below, not by name.
    const socket = connect({ host, port, servername: isIP(host) ? '' : host, ca: tls.caCerts, cert: tls.cert, key: tls.key, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined, rejectUnauthorized: true });
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
      if (!urn || !isUrn(urn) || parseUrn(urn).kind !== 'node' || parseUrn(urn).domain !== siteDomain) {
        reject(new UnavailableError(`the server at ${address} is not a node manager of ${siteDomain} (its certificate names ${urns.join(', ') || 'no URN'}); check --node, or pin it with --node-urn`));
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

async function nodeClient(f: SliverFlags, defaultTimeoutS: number) {
  if (!isUrn(f.sliver) || parseUrn(f.sliver).kind !== 'sliver') throw new InvalidArgumentError(`--sliver must be a sliver URN urn:fedlab:<site>:sliver:<name>, got ${JSON.stringify(f.sliver)}`);
  if (f.nodeUrn !== undefined && (!isUrn(f.nodeUrn) || parseUrn(f.nodeUrn).kind !== 'node')) throw new InvalidArgumentError(`--node-urn must be a node URN, got ${JSON.stringify(f.nodeUrn)}`);
  const address = checkAddress(f.node, '--node');
  const chain = readChainFile(f.chain);
  const tls = tlsFrom(f);
  const timeoutS = f.timeout ? parseDuration(f.timeout, '--timeout') : defaultTimeoutS;
  const serverUrn = f.nodeUrn ?? (await nodeUrnAt(address, tls, parseUrn(f.sliver).domain));
  return { client: createClient(NodeManagerService, { address, tls, serverUrn, deadlineMs: timeoutS * 1000 }), chain, timeoutS };
}

function withSliver(cmd: Command): Command {
  return withTlsFlags(
    cmd
      .requiredOption('--node <host:port>', "the node manager's address (fedlab deployment show lists each sliver's)")
      .option('--node-urn <urn>', "pin the node manager's certificate to this URN (default: any node of the sliver's site)")
      .requiredOption('--sliver <urn>', 'the sliver')
      .requiredOption('--chain <file>', 'your slice credential chain (fedlab member delegate --out)'),
  );
}

/** Registers `fedlab sliver`. */
export function registerSliverCommand(program: Command): void {
  const sliver = program.command('sliver').description('use a sliver directly on its node manager with a slice credential');

  withSliver(sliver.command('exec').description('run a command in a sliver, stream its output, exit with its exit code').argument('<command...>', 'the program and its arguments (after --)'))
    .option('--env <name=value>', 'environment variable (repeatable)', (v: string, p: string[]) => [...p, v], [])
    .option('--stdin', 'send this process\'s standard input to the command')
    .action(
      action(async (argv: string[], f: SliverFlags & { env: string[]; stdin?: boolean }) => {
        const env = envFrom(f.env);
        let stdin: Buffer | undefined;
        if (f.stdin) {
          const parts: Buffer[] = [];
          for await (const chunk of process.stdin) parts.push(chunk as Buffer);
          stdin = Buffer.concat(parts);
        }
        const { client, chain, timeoutS } = await nodeClient(f, 60);
        let code: number | undefined;
        try {
          const stream = client.exec({ sliverUrn: f.sliver, argv, env, ...(stdin ? { stdin } : {}), timeoutMs: Math.min(timeoutS * 1000, 86_400_000) }, { chain, deadlineMs: timeoutS * 1000 + 5_000 });
          for await (const msg of stream) {
            const c = msg.chunk;
            if (!c) continue;
            if (c.$case === 'stdout') process.stdout.write(c.stdout);
            else if (c.$case === 'stderr') process.stderr.write(c.stderr);
            else {
              const st = c.exit.status;
              if (st?.$case === 'signal') {
                const n = (constants.signals as Record<string, number>)[st.signal] ?? 0;
                process.stderr.write(`fedlab: the command was killed by ${st.signal}${c.exit.timedOut ? ' (timed out)' : ''}\n`);
                code = 128 + n;
              } else code = st?.$case === 'code' ? st.code : 0;
            }
          }
        } catch (err) {
          refused(err, 'exec failed');
        } finally {
          client.close();
        }
        if (code === undefined) throw new UnavailableError('the node manager ended the stream without the exit');
        // The command's own exit code, without a message of ours.
        process.exitCode = code;
      }),
    );

  withSliver(sliver.command('logs').description("the last output lines of the sliver's commands (its service's included), as its node manager kept them"))
    .option('--lines <n>', 'how many lines (1 to 200)', '50')
    .option('--json', 'print JSON')
    .action(
      action(async (f: SliverFlags & { lines: string; json?: boolean }) => {
        const n = Number(f.lines);
        if (!/^[0-9]+$/.test(f.lines) || n < 1 || n > 200) throw new InvalidArgumentError(`--lines must be between 1 and 200, got ${JSON.stringify(f.lines)}`);
        const { client, chain } = await nodeClient(f, 10);
        try {
          const res = await client.getSliverOutput({ sliverUrn: f.sliver, lines: n }, { chain }).catch((err: unknown) => refused(err, 'could not read the output'));
          if (f.json) printJson({ sliver_urn: f.sliver, lines: res.lines });
          else if (res.lines.length > 0) process.stdout.write(`${res.lines.join('\n')}\n`);
        } finally {
          client.close();
        }
      }),
    );
}
