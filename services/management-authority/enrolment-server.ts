/**
 * The enrolment listener. A node has no certificate before it enrols, and the
 * main server requires one for every call, so EnrollNode is also served here:
 * a second gRPC server with TLS server authentication only (the MA's own
 * certificate), serving nothing but ManagementAuthority.EnrollNode and
 * grpc.health.v1. The one-time token is what authenticates the caller.
 */
import { performance } from 'node:perf_hooks';
import { Server, ServerCredentials, status as Status, type ServerUnaryCall, type sendUnaryData, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from '../core/log.js';
import { bindServer } from '../core/rpc/bind.js';
import type { TlsMaterial } from '../core/rpc/server.js';
import { toGrpcStatus } from '../core/rpc/status.js';
import { ManagementAuthorityService, type EnrollNodeRequest, type EnrollNodeResponse } from '../generated/fedlab/v1/management_authority.js';

/** The service definition of the enrolment listener: EnrollNode alone. */
export const EnrolmentServiceDefinition = { enrollNode: ManagementAuthorityService.enrollNode } as const;

/** A running enrolment listener. */
export interface EnrolmentListener {
  readonly port: number;
  stop(): Promise<void>;
}

/** Starts the enrolment listener on `host:port` (0 picks a free port). */
export async function startEnrolmentListener(options: {
  readonly host: string;
  readonly port: number;
  readonly tls: TlsMaterial;
  readonly log: Logger;
  readonly enroll: (req: EnrollNodeRequest) => Promise<EnrollNodeResponse>;
}): Promise<EnrolmentListener> {
  const server = new Server({ 'grpc.max_receive_message_length': 256 * 1024 });
  const method = ManagementAuthorityService.enrollNode.path;
  const impl: UntypedServiceImplementation = {
    enrollNode: (call: ServerUnaryCall<EnrollNodeRequest, EnrollNodeResponse>, callback: sendUnaryData<EnrollNodeResponse>) => {
      const started = performance.now();
      options.enroll(call.request).then(
        (res) => {
          callback(null, res);
          options.log.info({ method, caller: call.getPeer(), code: 'OK', ms: Math.round(performance.now() - started) }, 'rpc');
        },
        (err: unknown) => {
          const st = toGrpcStatus(err, options.log, method);
          callback(st);
          options.log.info({ method, caller: call.getPeer(), code: Status[st.code], ms: Math.round(performance.now() - started) }, 'rpc');
        },
      );
    },
  };
  server.addService(EnrolmentServiceDefinition as never, impl);
  const health = new HealthImplementation({ '': 'SERVING', 'fedlab.v1.ManagementAuthority': 'SERVING' });
  health.addToServer(server);
  // Server authentication only: no client certificate is asked for.
  const creds = ServerCredentials.createSsl(null, [{ private_key: Buffer.from(options.tls.key), cert_chain: Buffer.from(options.tls.cert) }], false);
  const port = await bindServer(server, options.host, options.port, creds, { setting: 'enrolment.listen' });
  options.log.info({ address: `${options.host}:${port}` }, 'enrolment listener up (TLS server authentication; the token authenticates nodes)');
  let stopping: Promise<void> | undefined;
  return {
    port,
    stop: () => {
      stopping ??= new Promise<void>((resolve) => {
        health.setStatus('', 'NOT_SERVING');
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return stopping;
    },
  };
}
