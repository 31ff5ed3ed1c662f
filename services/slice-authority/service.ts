/**
 * The gRPC handlers of the slice authority: wire messages in, the caller
 * authenticated against its account, domain calls, wire messages out.
 */
import { defineService, type ServiceRegistration } from '../core/rpc/adapter.js';
import { SliceAuthorityService } from '../generated/fedlab/v1/slice_authority.js';
import type { Accounts } from './accounts.js';
import type { SliceCredentials } from './credentials.js';
import type { SliceBook } from './slices.js';

/** What the handlers call. */
export interface SaDomain {
  readonly accounts: Accounts;
  readonly book: SliceBook;
  readonly credentials: SliceCredentials;
}

/** The SliceAuthority service over the domain. */
export function sliceAuthorityService(d: SaDomain): ServiceRegistration {
  return defineService(SliceAuthorityService, {
    async createSlice(req, ctx) {
      return { slice: await d.book.create(d.accounts.provider(ctx.peer), req) };
    },
    async getSlice(req, ctx) {
      return { slice: await d.book.getLive(d.accounts.caller(ctx.peer), req.sliceUrn) };
    },
    async listSlices(req, ctx) {
      return d.book.list(d.accounts.caller(ctx.peer), req);
    },
    async renewSlice(req, ctx) {
      return d.book.renew(d.accounts.caller(ctx.peer), req);
    },
    async deleteSlice(req, ctx) {
      return d.book.delete(d.accounts.caller(ctx.peer), req.sliceUrn);
    },
    watchSlice(req, ctx) {
      return d.book.watch(d.accounts.caller(ctx.peer), req, ctx.signal);
    },
    async issueSliceCredential(req, ctx) {
      const caller = d.accounts.caller(ctx.peer);
      const slice = d.book.owned(caller, req.sliceUrn);
      d.book.requireLive(slice);
      return d.credentials.issue(caller, slice, req);
    },
    async revoke(req, ctx) {
      return d.credentials.revoke(d.accounts.caller(ctx.peer), req);
    },
    async listRevocations(req, ctx) {
      d.accounts.caller(ctx.peer);
      return d.credentials.list(req);
    },
  });
}
