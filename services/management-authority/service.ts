/**
 * The gRPC handlers of the management authority: ManagementAuthority and
 * Aggregate. Protobuf messages in, domain calls, protobuf messages out; everything
 * else lives in the domain classes.
 */
import { NotFoundError } from '../core/errors.js';
import { defineService, type ServiceRegistration } from '../core/rpc/adapter.js';
import { AggregateService } from '../generated/fedlab/v1/aggregate.js';
import { ManagementAuthorityService } from '../generated/fedlab/v1/management_authority.js';
import type { Access } from './access.js';
import type { Aggregate } from './aggregate/index.js';
import type { Clock } from '../core/clock.js';
import type { Delegations } from './delegations.js';
import type { Enrolment } from './enrolment.js';
import { listNodes } from './node-listing.js';
import type { NodeRegistry } from './node-registry.js';
import { HeartbeatRate, heartbeatRateFor } from './heartbeat-rate.js';
import { heartbeatAnswer, HeartbeatStreams } from './heartbeat-streams.js';
import { TERMS_STATEMENT_METADATA_KEY, type ProviderRegistry } from './providers.js';
import { urnField } from '../core/validate.js';

/** What the handlers call. */
export interface MaDomain {
  readonly access: Access;
  readonly enrolment: Enrolment;
  readonly registry: NodeRegistry;
  readonly providers: ProviderRegistry;
  readonly delegations: Delegations;
  readonly aggregate: Aggregate;
  readonly clock: Clock;
  readonly heartbeatIntervalMs: number;
}

/** The ManagementAuthority service over the domain. */
export function managementAuthorityService(deps: MaDomain): ServiceRegistration {
  // One rate per node over both ways it beats: reopening a stream or going unary buys nothing.
  const rate = new HeartbeatRate(heartbeatRateFor(deps.heartbeatIntervalMs));
  const streams = new HeartbeatStreams({
    rate,
    registry: deps.registry,
    clock: deps.clock,
    intervalMs: deps.heartbeatIntervalMs,
    revocationVersion: () => deps.delegations.revocationVersion,
  });
  return defineService(ManagementAuthorityService, {
    async createEnrollmentToken(req, ctx) {
      return deps.enrolment.createToken(ctx.peer, req);
    },
    async enrollNode(req) {
      return deps.enrolment.enroll(req);
    },
    async heartbeat(req, ctx) {
      deps.registry.heartbeat(ctx.peer, req, rate.admit);
      return heartbeatAnswer(deps.clock, deps.heartbeatIntervalMs, deps.delegations.revocationVersion);
    },
    heartbeatStream: streams.handler(),
    async listNodes(req, ctx) {
      // Every node's owner and endpoint at once is the site's business; GetNode answers for one node (docs/api.md, Access rules).
      deps.access.requireAdmin(ctx.peer, "list the site's nodes");
      return listNodes(deps.registry, req);
    },
    async getNode(req) {
      urnField('node_urn', req.nodeUrn, 'node');
      const n = deps.registry.get(req.nodeUrn);
      if (!n) throw new NotFoundError(`node ${req.nodeUrn} is not enrolled at this site; list the site's nodes with ListNodes`);
      return { node: deps.registry.toWire(n) };
    },
    async registerServiceProvider(req, ctx) {
      const values = ctx.metadata.get(TERMS_STATEMENT_METADATA_KEY);
      const statement = values.length ? String(values[0]) : undefined;
      return { provider: await deps.providers.register(ctx.peer, req, statement) };
    },
    async delegateToSliceAuthority(req, ctx) {
      deps.access.requireAdmin(ctx.peer, 'delegate to slice authorities');
      return deps.delegations.delegate(ctx.peer, req);
    },
    async revoke(req, ctx) {
      // Owners may withdraw their own nodes: revoke a credential of their owner → MA chains, or their own key.
      const ownerMay =
        (req.jti !== '' && deps.registry.all().some((n) => n.record.ownerUrn === ctx.peer.urn && n.record.ownerJtis.includes(req.jti))) ||
        (req.keyThumbprint !== '' &&
          req.keyThumbprint === ctx.peer.thumbprint &&
          deps.registry.all().some((n) => n.record.ownerUrn === ctx.peer.urn));
      if (!ownerMay)
        deps.access.requireAdmin(
          ctx.peer,
          "revoke credentials and keys on the site's list (owners: only their own nodes' credentials and their own key)",
        );
      return deps.delegations.revoke(ctx.peer, req);
    },
    async listRevocations(req) {
      return deps.delegations.list(req);
    },
  });
}

/** The Aggregate service over the domain. */
export function aggregateService(deps: MaDomain): ServiceRegistration {
  const aggregate = deps.aggregate;
  return defineService(AggregateService, {
    async getVersion() {
      return aggregate.getVersion();
    },
    async listResources(req) {
      return aggregate.listResources(req);
    },
    async describe(req, ctx) {
      return aggregate.describe(ctx, req.urns);
    },
    async allocate(req, ctx) {
      return aggregate.allocate(ctx, req);
    },
    async provision(req, ctx) {
      return aggregate.provision(ctx, req);
    },
    async performOperationalAction(req, ctx) {
      return { results: await aggregate.act(ctx, req) };
    },
    async status(req, ctx) {
      return aggregate.status(ctx, req.urns);
    },
    async renew(req, ctx) {
      return { results: await aggregate.renew(ctx, req) };
    },
    async delete(req, ctx) {
      return { results: await aggregate.delete(ctx, req.urns) };
    },
    async shutdown(req, ctx) {
      return { results: await aggregate.shutdown(ctx.peer, deps.access.isAdmin(ctx.peer), req, ctx.deadline) };
    },
    async updateRevocations(req, ctx) {
      return aggregate.updateRevocations(ctx, req.signedList);
    },
  });
}
