/**
 * bench:ma's baseline for HeartbeatStream: a bare grpc-js server in a process of its own, with the MA's
 * certificate and CA, the server options every Fedlab server uses (keepalive, limits), and one bidi
 * method at HeartbeatStream's path that answers each HeartbeatRequest with a HeartbeatResponse (the same
 * generated codecs). No identity, no checks, no registry: what any grpc-js server pays for the same
 * connections, streams and messages, so that the MA's figure can be read as a ratio to it.
 */
import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { systemClock } from '../services/core/clock.js';
import { grpcServerOptions, resolveServerLimits } from '../services/core/rpc/server-limits.js';
import {
  ManagementAuthorityService,
  type HeartbeatRequest,
  type HeartbeatResponse,
} from '../services/generated/fedlab/v1/management_authority.js';
import { heartbeatAnswer } from '../services/management-authority/heartbeat-streams.js';

/** The argument that starts this server instead of the bench. */
export const BARE_MA_FLAG = '--bare-ma';

/** What the parent sends the bare server. */
export interface BareMaSetup {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/** Serves until the parent sends anything (then resolves): reports `{ type: 'ready', port }` over IPC. */
export async function serveBareMa(): Promise<void> {
  const setup = await new Promise<BareMaSetup>((resolve) => process.once('message', (m) => resolve(m as BareMaSetup)));
  const server = new Server({ ...grpcServerOptions(resolveServerLimits()), 'grpc.enable_channelz': 0 });
  server.addService(
    { heartbeatStream: ManagementAuthorityService.heartbeatStream },
    {
      heartbeatStream: (call: ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>) => {
        // The MA's own answer (its clock, the interval, a revocation list version).
        call.on('data', () => call.write(heartbeatAnswer(systemClock, 5000, 0)));
        call.on('end', () => call.end());
        call.on('error', () => undefined);
      },
    },
  );
  const creds = ServerCredentials.createSsl(
    Buffer.from(setup.caPem),
    [{ private_key: Buffer.from(setup.keyPem), cert_chain: Buffer.from(setup.certPem) }],
    true,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  const stop = new Promise<void>((resolve) => process.once('message', () => resolve()));
  process.send?.({ type: 'ready', port });
  await stop;
  server.forceShutdown();
}
