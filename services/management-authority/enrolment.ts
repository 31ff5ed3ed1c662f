/**
 * Node enrolment (docs/design.md §1.2). An administrator (or the node's owner) makes a
 * one-time, expiring token; the node manager redeems it with its public key
 * and the owner → MA credential over the node, and gets its certificate from
 * the site CA. A token is 256 random bits, shown once and stored only as its
 * SHA-256. Redemption writes one batch (the token marked used, the node
 * recorded), so a reused, expired or forged token changes nothing, and two
 * redemptions of one token cannot both succeed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { canonicalJson } from '../core/canonical-json.js';
import {
  CredentialDeniedError,
  CredentialInvalidError,
  effectiveLimits,
  parseCredential,
  thumbprintOf,
  toPublicJwk,
  TrustStore,
  verifyChain,
  type PublicJwk,
  type RevocationLookup,
} from '../core/credentials/index.js';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  PermissionDeniedError,
  UnauthenticatedError,
} from '../core/errors.js';
import { isValidName, makeUrn, parseUrn } from '../core/identity/urn.js';
import type { Logger } from '../core/log.js';
import { checkedSshEndpoint } from './node-ssh.js';
import { checkUnderlayAddress } from './node-underlay.js';
import type { Store, Table } from '../core/store/store.js';
import { SliverIsolation } from '../generated/fedlab/v1/common.js';
import type { CreateEnrollmentTokenRequest, EnrollNodeRequest, EnrollNodeResponse } from '../generated/fedlab/v1/management_authority.js';
import type { Access, Peer } from './access.js';
import type { Clock } from '../core/clock.js';
import type { StyleName } from './config.js';
import { parseEndpoint } from '../core/endpoint.js';
import type { NodeRegistry } from './node-registry.js';
import { resourcesOf, TABLES, type NodeRecord, type TokenRecord, type TokenRequestRecord } from './records.js';
import { enrolmentKey, noCaError, type SiteCa } from './site-ca.js';
import { Mutex } from '../core/mutex.js';
import { requestId, text, urnField } from '../core/validate.js';

/** Privileges the owner → MA chain must grant for the MA to manage the node. */
export const REQUIRED_OWNER_PRIVILEGES = ['sliver.create', 'sliver.delete'] as const;

const TOKEN_PREFIX = 'fedlab-enrol.';

/** SHA-256 (hex) of a token: the only form in which tokens are stored. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Options of {@link Enrolment}. */
export interface EnrolmentOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  readonly registry: NodeRegistry;
  readonly access: Access;
  readonly ca: SiteCa | undefined;
  readonly maUrn: string;
  /** Thumbprint of the MA's key: the owner chain must be issued to it. */
  readonly maKid: string;
  readonly domain: string;
  readonly style: StyleName;
  readonly tokenTtlS: number;
  readonly maxTokenTtlS: number;
  readonly heartbeatIntervalMs: number;
  readonly revocations: RevocationLookup;
}

/** A freshly made token (shown once). */
export interface IssuedToken {
  readonly token: string;
  readonly nodeUrn: string;
  readonly expiresAt: Date;
}

/** Enrolment tokens and their redemption. */
export class Enrolment {
  private readonly tokens: Table<TokenRecord>;
  private readonly requests: Table<TokenRequestRecord>;
  // The final check-and-write of a redemption or token creation; the slow work (certificate signing) happens outside it.
  private readonly mutex = new Mutex();

  constructor(private readonly deps: EnrolmentOptions) {
    this.tokens = deps.store.table<TokenRecord>(TABLES.tokens);
    this.requests = deps.store.table<TokenRequestRecord>(TABLES.tokenRequests);
  }

  /**
   * CreateEnrollmentToken: administrators for any node, owners for their own.
   * A retry with the same request id (and arguments) while the token is unused
   * gives a fresh token for the same node and expiry and retires the old one,
   * since the first token was never stored and cannot be shown again.
   */
  async createToken(peer: Peer & { readonly jwk?: unknown }, req: CreateEnrollmentTokenRequest): Promise<IssuedToken> {
    const rid = requestId(req.requestId);
    if (typeof req.nodeName !== 'string' || !isValidName(req.nodeName)) {
      throw new InvalidArgumentError('node_name must match [a-z0-9][a-z0-9._-]{0,62}', { field: 'node_name' });
    }
    const owner = urnField('owner_urn', req.ownerUrn, 'owner');
    // A peered domain's owner could otherwise have our CA certify a node of ours (issue 15).
    if (owner.domain !== this.deps.domain) {
      throw new PermissionDeniedError(
        `the owner ${req.ownerUrn} is not of this site's domain ${this.deps.domain}: only owners of ${this.deps.domain} enrol nodes here`,
        { field: 'owner_urn', rule: 'owner-domain' },
      );
    }
    if (!this.deps.access.isAdmin(peer) && peer.urn !== req.ownerUrn) {
      throw new PermissionDeniedError(
        `only the site's administrators, or the owner ${req.ownerUrn} itself, may make an enrolment token for it; the caller is ${peer.urn}`,
        { rule: 'admin' },
      );
    }
    const ttl = req.ttlS === 0 ? this.deps.tokenTtlS : req.ttlS;
    if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > this.deps.maxTokenTtlS) {
      throw new InvalidArgumentError(`ttl_s must be 1 to ${this.deps.maxTokenTtlS} seconds (0: ${this.deps.tokenTtlS})`, {
        field: 'ttl_s',
      });
    }
    const nodeUrn = makeUrn(this.deps.domain, 'node', req.nodeName);
    if (this.deps.registry.has(nodeUrn))
      throw new AlreadyExistsError(`node ${nodeUrn} is already enrolled; choose another node_name`, { rule: 'node' });
    // The owner's key is known when the owner asks itself: its TLS certificate's key.
    const ownerJwk =
      peer.urn === req.ownerUrn && peer.jwk
        ? (toPublicJwk(peer.jwk as Record<string, unknown>) as unknown as Record<string, unknown>)
        : undefined;
    const fingerprint = createHash('sha256')
      .update(canonicalJson({ node: nodeUrn, owner: req.ownerUrn, ttl }))
      .digest('base64url');
    const requestKey = `${peer.urn} ${rid}`;

    return this.mutex.run(async () => {
      const now = this.deps.clock.now();
      const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
      const hash = tokenHash(token);
      const seen = await this.requests.get(requestKey);
      const batch = this.deps.store.batch();
      let rec: TokenRecord;
      if (seen) {
        if (seen.fingerprint !== fingerprint) {
          throw new AlreadyExistsError(`request id ${rid} was already used for another token; use a new request id`, {
            rule: 'request_id',
          });
        }
        const old = await this.tokens.get(seen.tokenHash);
        if (!old || old.usedAt !== undefined)
          throw new AlreadyExistsError(`the token of request ${rid} was already redeemed: ${nodeUrn} is enrolled`, { rule: 'request_id' });
        if (now >= old.expiresAt)
          throw new FailedPreconditionError(`the token of request ${rid} expired; make a new one with a new request id`, {
            rule: 'expired',
          });
        rec = { ...old, ...(ownerJwk ? { ownerJwk } : {}) };
        batch.del(this.tokens, seen.tokenHash);
      } else {
        rec = {
          nodeUrn,
          ownerUrn: req.ownerUrn,
          ...(ownerJwk ? { ownerJwk } : {}),
          createdBy: peer.urn,
          createdAt: now,
          expiresAt: now + ttl * 1000,
          requestKey,
        };
      }
      await batch.put(this.tokens, hash, rec).put(this.requests, requestKey, { fingerprint, tokenHash: hash }).write({ sync: true });
      this.deps.log.info(
        { node: nodeUrn, owner: req.ownerUrn, by: peer.urn, expiresAt: new Date(rec.expiresAt).toISOString() },
        'enrolment token made',
      );
      return { token, nodeUrn, expiresAt: new Date(rec.expiresAt) };
    });
  }

  /** Looks a token up; UNAUTHENTICATED for an unknown, used or expired one. */
  private async redeemable(token: string): Promise<{ hash: string; rec: TokenRecord }> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 256) {
      throw new UnauthenticatedError('an enrolment token is required: ask the site administrator for one (`fedlab node token`)', {
        rule: 'token',
      });
    }
    const hash = tokenHash(token);
    const rec = await this.tokens.get(hash);
    if (!rec)
      throw new UnauthenticatedError('unknown enrolment token; ask the site administrator for a new one (`fedlab node token`)', {
        rule: 'token',
      });
    if (rec.usedAt !== undefined)
      throw new UnauthenticatedError('this enrolment token was already used; each token enrols one node once — ask for a new one', {
        rule: 'token-used',
      });
    if (this.deps.clock.now() >= rec.expiresAt) {
      throw new UnauthenticatedError(`this enrolment token expired at ${new Date(rec.expiresAt).toISOString()}; ask for a new one`, {
        rule: 'token-expired',
      });
    }
    return { hash, rec };
  }

  /** EnrollNode: redeems a token for the node's certificate and records the node. */
  async enroll(req: EnrollNodeRequest): Promise<EnrollNodeResponse> {
    const { hash, rec } = await this.redeemable(req.token);
    const ca = this.deps.ca;
    if (!ca) throw noCaError();
    const key = await enrolmentKey(req.publicKeyPem, req.csrPem);
    const endpoint = parseEndpoint(req.endpoint);
    const capacity = resourcesOf(req.capacity);
    if (capacity.cpuMillis <= 0 || capacity.memMb <= 0) {
      throw new InvalidArgumentError('capacity must offer some CPU (cpu_millis) and memory (mem_mb)', { field: 'capacity' });
    }
    if (
      ![
        SliverIsolation.SLIVER_ISOLATION_CONTAINER,
        SliverIsolation.SLIVER_ISOLATION_PROCESS,
        SliverIsolation.SLIVER_ISOLATION_SIMULATED,
        SliverIsolation.SLIVER_ISOLATION_NONE,
      ].includes(req.isolation)
    ) {
      throw new InvalidArgumentError('isolation must say how the node isolates slivers (CONTAINER, PROCESS, SIMULATED or NONE)', {
        field: 'isolation',
      });
    }
    text('version', req.version, 64);
    // An endpoint that does not check out is left out (logged), never published; enrolment goes on.
    const ssh = checkedSshEndpoint(rec.nodeUrn, req.ssh, {}, this.deps.log);
    const underlayAddress = checkUnderlayAddress(req.underlayAddress);
    const linkKbps = req.capacity?.bandwidthKbps ?? 0;
    const owner = await this.checkOwnerChain(rec, req.ownerCredentialChain);
    const certificatePem = await ca.signNode(rec.nodeUrn, key, endpoint.host);
    const keyJwk = toPublicJwk(key);

    return this.mutex.run(async () => {
      // Again under the lock: another redemption of this token may have won meanwhile.
      const again = await this.redeemable(req.token);
      if (again.rec.usedAt !== undefined) throw new UnauthenticatedError('this enrolment token was already used', { rule: 'token-used' });
      if (this.deps.registry.has(rec.nodeUrn)) throw new AlreadyExistsError(`node ${rec.nodeUrn} is already enrolled`, { rule: 'node' });
      const now = this.deps.clock.now();
      const node: NodeRecord = {
        urn: rec.nodeUrn,
        ownerUrn: rec.ownerUrn,
        ownerChain: [...req.ownerCredentialChain],
        ownerJtis: owner.jtis,
        ownerLimits: owner.limits,
        ownerChainExpiresAt: owner.expiresAt,
        keyThumbprint: thumbprintOf(keyJwk),
        certificatePem,
        enrolledAt: now,
        endpoint: req.endpoint,
        capacity,
        isolation: req.isolation,
        version: req.version,
        netemAvailable: req.netemAvailable,
        exclusive: this.deps.style === 'emulab',
        ...(ssh && ssh !== 'ignore' ? { ssh } : {}),
        ...(underlayAddress ? { underlayAddress } : {}),
        ...(linkKbps > 0 && Number.isSafeInteger(linkKbps) ? { linkKbps } : {}),
      };
      await this.deps.store
        .batch()
        .put(this.tokens, hash, { ...again.rec, usedAt: now })
        .put(this.deps.registry.table, node.urn, node)
        .write({ sync: true });
      this.deps.registry.added(node);
      this.deps.log.info({ node: node.urn, owner: node.ownerUrn, endpoint: node.endpoint }, 'node enrolled');
      return {
        nodeUrn: node.urn,
        certificatePem,
        caChainPem: [...ca.chainPem],
        aggregateUrn: this.deps.maUrn,
        heartbeatIntervalS: Math.max(1, Math.ceil(this.deps.heartbeatIntervalMs / 1000)),
      };
    });
  }

  /** Verifies the owner → MA chain: rooted at the token's owner, held by this MA, covering the node with the privileges the MA needs. */
  private async checkOwnerChain(
    rec: TokenRecord,
    chain: readonly string[],
  ): Promise<{ jtis: string[]; limits: ReturnType<typeof effectiveLimits>; expiresAt: number }> {
    if (!Array.isArray(chain) || chain.length === 0) {
      throw new InvalidArgumentError("owner_credential_chain is required: the owner's owner → MA credential over this node, root first", {
        field: 'owner_credential_chain',
      });
    }
    const now = new Date(this.deps.clock.now());
    let root;
    try {
      root = parseCredential(chain[0] as string, 0);
    } catch (err) {
      throw new InvalidArgumentError(`owner_credential_chain: ${(err as Error).message}`, { field: 'owner_credential_chain' });
    }
    // Also for a token recorded before owners were held to the site's domain.
    if (!inDomain(root.claims.iss, this.deps.domain) || !inDomain(rec.ownerUrn, this.deps.domain)) {
      throw new PermissionDeniedError(
        `owner_credential_chain is rooted at ${root.claims.iss}, who is not an owner of this site's domain ${this.deps.domain}`,
        { field: 'owner_credential_chain', rule: 'owner-domain' },
      );
    }
    if (root.claims.iss !== rec.ownerUrn) {
      throw new PermissionDeniedError(`owner_credential_chain is rooted at ${root.claims.iss}, not at the node's owner ${rec.ownerUrn}`, {
        field: 'owner_credential_chain',
        rule: 'owner',
      });
    }
    let ownerJwk: PublicJwk | undefined = rec.ownerJwk ? toPublicJwk(rec.ownerJwk) : undefined;
    ownerJwk ??= await this.deps.ca?.certifiedKey(rec.ownerUrn, root.header.kid, now);
    if (!ownerJwk) {
      throw new FailedPreconditionError(
        `cannot find ${rec.ownerUrn}'s key to check the owner credential: have the owner make the token itself (its certificate gives its key), or give the MA the site CA directory (enrolment.ca_dir)`,
        { rule: 'owner-key' },
      );
    }
    const trust = new TrustStore();
    trust.addAnchor({ urn: rec.ownerUrn, jwk: ownerJwk, targets: [`urn:fedlab:${this.deps.domain}:node:*`] });
    try {
      const grant = verifyChain({
        chain,
        trust,
        holder: { urn: this.deps.maUrn, thumbprint: this.deps.maKid },
        privilege: 'sliver.create',
        object: rec.nodeUrn,
        now,
        revocations: this.deps.revocations,
        cache: null,
      });
      const missing = REQUIRED_OWNER_PRIVILEGES.filter((p) => !grant.privileges.includes(p));
      if (missing.length) {
        throw new PermissionDeniedError(
          `owner_credential_chain does not grant ${missing.join(', ')}; the MA needs ${REQUIRED_OWNER_PRIVILEGES.join(' and ')} at least`,
          {
            field: 'owner_credential_chain',
            rule: 'grant-privilege',
          },
        );
      }
      return { jtis: [...grant.jtis], limits: grant.limits, expiresAt: grant.exp * 1000 };
    } catch (err) {
      if (err instanceof CredentialInvalidError) {
        throw new InvalidArgumentError(`owner_credential_chain: ${err.message}`, {
          field: 'owner_credential_chain',
          link: err.link,
          rule: err.rule,
        });
      }
      if (err instanceof CredentialDeniedError) {
        throw new PermissionDeniedError(`owner_credential_chain: ${err.message}`, {
          field: 'owner_credential_chain',
          link: err.link,
          rule: err.rule,
        });
      }
      throw err;
    }
  }
}

/** Whether `urn` parses and names an object of `domain` (a malformed URN is in no domain). */
function inDomain(urn: unknown, domain: string): boolean {
  if (typeof urn !== 'string') return false;
  try {
    return parseUrn(urn).domain === domain;
  } catch {
    return false;
  }
}
