/**
 * The ServiceProvider gRPC handlers: access checks, then the domain classes.
 */
import { defineService, type ServiceRegistration } from '../core/rpc/adapter.js';
import { ServiceProviderService } from '../generated/fedlab/v1/service_provider.js';
import type { Access } from './access.js';
import type { Deployments } from './deployments.js';
import type { Members } from './members.js';

/** The ServiceProvider service registration. */
export function serviceProviderService(d: { access: Access; deployments: Deployments; members: Members }): ServiceRegistration {
  return defineService(ServiceProviderService, {
    async *deploy(req, ctx) {
      d.access.requireAdmin(ctx.peer, 'deploy');
      yield* d.deployments.deploy(req, ctx.signal);
    },
    async getDeployment(req, ctx) {
      d.access.requireReader(ctx.peer, 'read deployments');
      return { deployment: d.deployments.get(req.name) };
    },
    async listDeployments(req, ctx) {
      d.access.requireReader(ctx.peer, 'list deployments');
      return d.deployments.list(req.pageSize, req.pageToken, req.state);
    },
    async deleteDeployment(req, ctx) {
      d.access.requireAdmin(ctx.peer, 'delete deployments');
      return { deployment: await d.deployments.delete(req.name, req.keepSlice) };
    },
    async addMember(req, ctx) {
      d.access.requireAdmin(ctx.peer, 'add members');
      return { member: await d.members.add(req) };
    },
    async delegateToMember(req, ctx) {
      d.access.requireAdmin(ctx.peer, 'delegate credentials to members');
      return d.members.delegate(req);
    },
  });
}
