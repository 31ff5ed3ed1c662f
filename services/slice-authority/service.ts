/**
 * The gRPC handlers of the slice authority: wire messages in, the caller
 * authenticated against its account, domain calls, wire messages out.
 */
import { defineService, type ServiceRegistration } from '../core/rpc/adapter.js';
import { SliceAuthorityService } from '../generated/fedlab/v1/slice_authority.js';
import type { Accounts } from './accounts.js';
import type { SliceCredentials } from './credentials.js';
import type { SliceBook } from './slices/slice-book.js';

/** What the handlers call. */
export interface SaDomain {
  readonly accounts: Accounts;
  readonly book: SliceBook;
  readonly credentials: SliceCredentials;
}

/** The SliceAuthority service over the domain. */
export function sliceAuthorityService(domain: SaDomain): ServiceRegistration {
  return defineService(SliceAuthorityService, {
    async createSlice(req, ctx) {
      return { slice: await domain.book.create(domain.accounts.provider(ctx.peer), req, ctx.signal) };
    },
    async getSlice(req, ctx) {
      return { slice: await domain.book.getLive(domain.accounts.caller(ctx.peer), req.sliceUrn) };
    },
    async listSlices(req, ctx) {
      return domain.book.list(domain.accounts.caller(ctx.peer), req);
    },
    async renewSlice(req, ctx) {
      return domain.book.renew(domain.accounts.caller(ctx.peer), req, ctx.signal);
    },
    async deleteSlice(req, ctx) {
      return domain.book.delete(domain.accounts.caller(ctx.peer), req.sliceUrn, ctx.signal);
    },
    watchSlice(req, ctx) {
      return domain.book.watch(domain.accounts.caller(ctx.peer), req, ctx.signal);
    },
    async issueSliceCredential(req, ctx) {
      const caller = domain.accounts.caller(ctx.peer);
      const slice = domain.book.owned(caller, req.sliceUrn);
      domain.book.requireLive(slice);
      return domain.credentials.issue(caller, slice, req);
    },
    async revoke(req, ctx) {
      return domain.credentials.revoke(domain.accounts.caller(ctx.peer), req, ctx.chain);
    },
    async listRevocations(req, ctx) {
      domain.accounts.caller(ctx.peer);
      return domain.credentials.list(req);
    },
    async updateSliceUsers(req, ctx) {
      const { slice, results } = await domain.book.updateUsers(domain.accounts.caller(ctx.peer), req, ctx.signal);
      return { slice, sites: results };
    },
  });
}
