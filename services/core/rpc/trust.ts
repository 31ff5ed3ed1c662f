/**
 * Transport trust that can change while a process runs: which CA
 * certificates TLS accepts (a domain's own CA plus its peers' bundle CAs),
 * and which names each of those CAs may vouch for. The server factory and the
 * client factory take one of these instead of fixed CA PEM; the federation
 * code (services/core/federation) implements it.
 */
import type { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import type { CertIdentity } from '../identity/certificate.js';

/** A server certificate check run after TLS verified the chain (what `checkServerIdentity` returns). */
export type ServerIdentityCheck = (host: string, cert: PeerCertificate) => Error | undefined;

/** CA trust that follows changes without a restart, with a per-domain check of the names a CA vouches for. */
export interface TransportTrust {
  /** Mutual-TLS server credentials whose accepted client CAs follow changes (new connections use the latest). */
  serverCredentials(): ServerCredentials;
  /** Client credentials whose trusted server CAs follow changes; `check` runs after chain verification. */
  channelCredentials(check: ServerIdentityCheck): ChannelCredentials;
  /**
   * Throws an UnauthenticatedError when a TLS-verified client certificate names a principal that
   * the CA it chains to does not vouch for (a domain's CA vouches only for its own domain's names).
   */
  checkClient(identity: CertIdentity): void;
  /** The same check for a TLS-verified server certificate (Node's detailed form, with its issuer chain). */
  checkServer(cert: PeerCertificate): Error | undefined;
}
