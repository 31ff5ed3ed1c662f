/**
 * The ServiceProvider gRPC handlers: access checks, then the domain classes.
 */
import { defineService, type ServiceRegistration } from '../core/rpc/adapter.js';
import { ServiceProviderService } from '../generated/fedlab/v1/service_provider.js';
import type { Access } from './access.js';
import type { Deployments } from './deployments/deployments.js';
import type { Members } from './members.js';

/** The ServiceProvider service registration. */
export function serviceProviderService(domain: { access: Access; deployments: Deployments; members: Members }): ServiceRegistration {
  return defineService(ServiceProviderService, {
    async *deploy(req, ctx) {
      domain.access.requireAdmin(ctx.peer, 'deploy');
      yield* domain.deployments.deploy(req, ctx.signal);
    },
    async getDeployment(req, ctx) {
      domain.access.requireReader(ctx.peer, 'read deployments');
      return { deployment: domain.deployments.get(req.name, domain.access.viewOf(ctx.peer)) };
    },
    async listDeployments(req, ctx) {
      domain.access.requireReader(ctx.peer, 'list deployments');
      return domain.deployments.list(req.pageSize, req.pageToken, req.state, domain.access.viewOf(ctx.peer));
    },
    async deleteDeployment(req, ctx) {
      domain.access.requireAdmin(ctx.peer, 'delete deployments');
      return { deployment: await domain.deployments.delete(req.name, req.keepSlice) };
    },
    async addMember(req, ctx) {
      domain.access.requireAdmin(ctx.peer, 'add members');
      return { member: await domain.members.add(req) };
    },
    async delegateToMember(req, ctx) {
      domain.access.requireAdmin(ctx.peer, 'delegate credentials to members');
      return domain.members.delegate(req);
    },
    async removeMember(req, ctx) {
      domain.access.requireAdmin(ctx.peer, 'remove members');
      return domain.members.remove(req.memberUrn);
    },
    async listMembers(req, ctx) {
      domain.access.requireReader(ctx.peer, 'list members');
      return domain.members.list(req);
    },
    async revokeMemberCredential(req, ctx) {
      domain.access.requireAdmin(ctx.peer, "revoke members' credentials");
      return domain.members.revokeCredential(req.memberUrn, req.jti);
    },
  });
}
