/**
 * The slice authority's caps on its revocation list, through the API (real SA, MA and node): with
 * `revocation.max_entries_per_revoker` 2, a provider revokes two credentials of its slice and the third
 * Revoke answers RESOURCE_EXHAUSTED naming the cap and what to do, with nothing put on the list; an
 * administrator still revokes it (not counted per revoker); re-revoking what is on the list is never
 * refused.
 */
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { disposeParties } from '../helpers/ma-harness.js';
import { startFederation, type Federation } from '../helpers/sa-harness.js';

const A = 'plc.test';

describe('slice authority revocation caps', () => {
  let fed: Federation;
  const jtis: string[] = [];

  beforeAll(async () => {
    fed = await startFederation({
      sites: [{ domain: A, style: 'planetlab', nodes: 1, driver: 'simulated' }],
      saConfig: { revocation: { max_entries_per_revoker: 2 } },
    });
    const res = await fed.saClient().createSlice({
      users: [],
      requestId: 'caps-1',
      name: 'caps',
      description: 'revocation caps',
      mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
      sites: [siteRequest(A, { count: 1 })],
      start: true,
      wait: true,
    });
    expect(res.slice?.state).toBe(SliceState.SLICE_STATE_READY);
    for (let i = 0; i < 3; i++) {
      const issued = await fed.saClient().issueSliceCredential({
        requestId: `caps-cred-${i}`,
        sliceUrn: res.slice?.urn as string,
        holderCertificatePem: fed.home.sp.certPem,
        privileges: [],
        targets: [],
        maxDelegations: 0,
        ttlS: 600,
      });
      jtis.push(issued.jti);
    }
  }, 120_000);

  afterAll(async () => {
    await fed?.destroy();
    await disposeParties();
  }, 60_000);

  it('refuses a provider past its cap with RESOURCE_EXHAUSTED naming it; an administrator still revokes', async () => {
    const revoke = (jti: string, who = fed.home.sp) => fed.saClient(who).revoke({ jti, keyThumbprint: '', reason: 'caps' });
    await revoke(jtis[0]!);
    const second = await revoke(jtis[1]!);
    expect(second.version).toBe(2);
    // Re-revoking is never refused.
    expect((await revoke(jtis[1]!)).version).toBe(2);
    const err = (await revoke(jtis[2]!).catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(err.details).toMatch(/has 2 live entries on the revocation list .+ \(revocation\.max_entries_per_revoker = 2\)/);
    expect(err.details).toMatch(/shorter lifetimes|delete the slice|administrator/);
    const list = await fed.saClient().listRevocations({ pageSize: 0, pageToken: '', sinceVersion: 0 });
    expect(list.entries.map((e) => e.jti)).toEqual([jtis[0], jtis[1]]);
    const byAdmin = await revoke(jtis[2]!, fed.home.admin);
    expect(byAdmin.version).toBe(3);
    expect(byAdmin.entry?.revokedBy).toBe(fed.home.admin.urn);
    expect(fed.sa?.credentials.liveEntries).toBe(3);
  }, 60_000);
});
