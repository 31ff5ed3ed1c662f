/**
 * The enrolment listener. A node has no certificate before it enrols, and the
 * main server requires one for every call, so EnrollNode is also served here:
 * core's server-authenticated-only listener (the MA's own certificate),
 * serving nothing but ManagementAuthority.EnrollNode and grpc.health.v1. The
 * one-time token is what authenticates the caller.
 */
import type { Logger } from '../core/log.js';
import { startPublicListener, type PublicListener } from '../core/rpc/public-listener.js';
import type { TlsMaterial } from '../core/rpc/server.js';
import {
  ManagementAuthorityService,
  type EnrollNodeRequest,
  type EnrollNodeResponse,
} from '../generated/fedlab/v1/management_authority.js';

/** A running enrolment listener. */
export type EnrolmentListener = PublicListener;

/** Starts the enrolment listener on `host:port` (0 picks a free port). */
export async function startEnrolmentListener(options: {
  readonly host: string;
  readonly port: number;
  readonly tls: TlsMaterial;
  readonly log: Logger;
  readonly enroll: (req: EnrollNodeRequest) => Promise<EnrollNodeResponse>;
  /** Most connections one client address may hold open (config `server.max_connections_per_address`). */
  readonly maxConnectionsPerAddress?: number;
}): Promise<EnrolmentListener> {
  const listener = await startPublicListener({
    host: options.host,
    port: options.port,
    tls: options.tls,
    log: options.log,
    setting: 'enrolment.listen',
    name: 'enrolment',
    // A token, a CSR and an owner chain fit well within this.
    serverOptions: { 'grpc.max_receive_message_length': 256 * 1024 },
    methods: { enrollNode: { definition: ManagementAuthorityService.enrollNode, originalName: 'EnrollNode', handle: options.enroll } },
    health: { '': 'SERVING', 'fedlab.v1.ManagementAuthority': 'SERVING' },
    ...(options.maxConnectionsPerAddress !== undefined ? { maxConnectionsPerAddress: options.maxConnectionsPerAddress } : {}),
  });
  options.log.info(
    { address: `${options.host}:${listener.port}` },
    'enrolment listener up (TLS server authentication; the token authenticates nodes)',
  );
  return listener;
}
