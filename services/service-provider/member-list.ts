/**
 * ListMembers: the provider's members by URN, a page at a time, each with the SSH keys it was given
 * slice logins with and the credentials delegated to it (revoked or not). A removed member is listed
 * only when asked for, with when it was removed (its credentials were revoked with it and are
 * forgotten: the removal's answer names them).
 */
import { encodePageToken, decodePageToken } from '../core/paging.js';
import { pageSize } from '../core/validate.js';
import type { ListMembersRequest, ListMembersResponse, Member } from '../generated/fedlab/v1/service_provider.js';
import type { MemberIntents } from './member-intents.js';
import type { DelegationRecord, MemberRecord } from './records.js';

const LIST = 'members';

/** One page of ListMembers. */
export async function listMembers(intents: MemberIntents, req: ListMembersRequest): Promise<ListMembersResponse> {
  const size = pageSize(req.pageSize);
  const after = decodePageToken(LIST, req.pageToken);
  const members: Member[] = [];
  let more = false;
  for await (const [urn, rec] of intents.members.entries(after ? { gt: after } : {})) {
    if (rec.removedAt !== undefined && !req.includeRemoved) continue;
    if (members.length === size) {
      more = true;
      break;
    }
    const delegations = await intents.delegations.values({ prefix: `${urn} ` });
    members.push(memberOf(rec, delegations));
  }
  const last = members[members.length - 1];
  return { members, nextPageToken: more && last ? encodePageToken(LIST, last.urn) : '' };
}

/**
 * A member on the wire. With its `delegations` (ListMembers) it carries its keys, removal and
 * credentials; without (AddMember's answer) only who it is.
 */
export function memberOf(rec: MemberRecord, delegations?: readonly DelegationRecord[]): Member {
  const base = {
    urn: rec.urn,
    certificatePem: rec.certificatePem,
    keyThumbprint: rec.keyThumbprint,
    displayName: rec.displayName,
    addedAt: new Date(rec.addedAt),
  };
  if (!delegations) return { ...base, sshPublicKeys: [], credentials: [] };
  return {
    ...base,
    sshPublicKeys: [...(rec.sshKeys ?? [])],
    ...(rec.removedAt !== undefined ? { removedAt: new Date(rec.removedAt) } : {}),
    credentials: delegations
      .map((d) => ({
        jti: d.jti,
        sliceUrn: d.sliceUrn,
        expiresAt: new Date(d.expiresAt),
        revoked: d.revocation?.state === 'done',
        withSshKey: d.sshKey !== undefined,
      }))
      .sort((a, b) => a.expiresAt.getTime() - b.expiresAt.getTime() || (a.jti < b.jti ? -1 : 1)),
  };
}
