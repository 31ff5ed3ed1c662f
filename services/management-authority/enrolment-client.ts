/**
 * The node side of enrolment: calls EnrollNode on a management authority's
 * enrolment listener without a client certificate (the node has none yet),
 * checking that the server's certificate names the MA's URN and chains to the
 * site CA the node was given out of band. Every call has a deadline.
 */
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import type { EnrollNodeRequest, EnrollNodeResponse } from '../generated/fedlab/v1/management_authority.js';
import { ManagementAuthorityService } from '../generated/fedlab/v1/management_authority.js';
import { issueRoot, NODE_PRIVILEGES, type IssuedCredential, type PublicJwk } from '../core/credentials/index.js';
import { parseUrn } from '../core/identity/urn.js';
import type { KeyObject } from 'node:crypto';
import { fedlabUrnsOf } from '../core/identity/certificate.js';

/** Options of {@link enrollNode}. */
export interface EnrollOptions {
  /** host:port of the MA's enrolment listener. */
  readonly address: string;
  /** The site CA certificate(s), PEM. */
  readonly caPem: string;
  /** When set, the MA's certificate must name exactly this URN (else its host name is checked). */
  readonly maUrn?: string;
  readonly deadlineMs?: number;
}

/** Redeems an enrolment token; rejects with the gRPC error the MA returned. */
export function enrollNode(options: EnrollOptions, request: EnrollNodeRequest): Promise<EnrollNodeResponse> {
  const verify = options.maUrn
    ? (_host: string, cert: PeerCertificate): Error | undefined => {
        const urns = fedlabUrnsOf(cert);
        return urns.length === 1 && urns[0] === options.maUrn
          ? undefined
          : new Error(`the server's certificate names ${urns.join(', ') || 'no URN'}, not ${options.maUrn}`);
      }
    : (host: string, cert: PeerCertificate): Error | undefined => checkServerIdentity(host, cert);
  const client = new Client(
    options.address,
    credentials.createSsl(Buffer.from(options.caPem), null, null, { checkServerIdentity: verify }),
  );
  const def = ManagementAuthorityService.enrollNode;
  return new Promise<EnrollNodeResponse>((resolve, reject) => {
    client.makeUnaryRequest(
      def.path,
      (v: EnrollNodeRequest) => def.requestSerialize(v),
      (b: Buffer) => def.responseDeserialize(b),
      request,
      new Metadata(),
      { deadline: Date.now() + (options.deadlineMs ?? 10_000) },
      (err: ServiceError | null, res?: EnrollNodeResponse) => (err ? reject(err) : resolve(res as EnrollNodeResponse)),
    );
  }).finally(() => client.close());
}

/** What a node's owner gives its site's MA by default: all it needs to run slivers on the owner's nodes. */
export const OWNER_PRIVILEGES: readonly string[] = NODE_PRIVILEGES;

/** What {@link issueOwnerCredential} needs. */
export interface OwnerCredentialOptions {
  /** The owner's private key and URN (the root of the chain). */
  readonly ownerKey: KeyObject;
  readonly ownerUrn: string;
  /** The site's MA: its URN and public key (a KeyObject, a JWK, or its certificate's key). */
  readonly maUrn: string;
  readonly maKey: KeyObject | PublicJwk | Record<string, unknown>;
  readonly ttlSeconds: number;
  /** Default {@link OWNER_PRIVILEGES}. */
  readonly privileges?: readonly string[];
}

/**
 * The owner → MA credential a node enrols with (EnrollNode's owner chain): over every node of the MA's
 * domain (each node checks that it is the object), delegable once, so the MA can hand slices on.
 */
export function issueOwnerCredential(options: OwnerCredentialOptions): Promise<IssuedCredential> {
  const { domain } = parseUrn(options.maUrn);
  return issueRoot({
    key: options.ownerKey,
    issuer: options.ownerUrn,
    subject: options.maUrn,
    subjectKey: options.maKey,
    targets: [`urn:fedlab:${domain}:node:*`],
    privileges: options.privileges ?? OWNER_PRIVILEGES,
    dlg: 1,
    ttlSeconds: options.ttlSeconds,
  });
}
