// Issue 15, item 1: a peered domain's owner cannot enrol a node into our site. The attack, step by step,
// between two peered domains (a.test is the victim, b.test the attacker's): asking a.test for a token for
// itself, having a.test's admin make one for it, redeeming a token of an a.test owner with its own chain,
// redeeming a token recorded before the fix (with its own key), and heartbeating as the node. Every step
// is PERMISSION_DENIED, and afterwards no token was made for or redeemed by the foreign owner, a.test's
// CA issued no certificate and no node record exists (store and ListNodes).
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCaState } from '../../certs/index.js';
import { publicKeyToPem } from '../../services/core/identity/keys.js';
import { createClient } from '../../services/core/rpc/client.js';
import { SliverIsolation } from '../../services/generated/fedlab/v1/common.js';
import { ManagementAuthorityService, type EnrollNodeRequest } from '../../services/generated/fedlab/v1/management_authority.js';
import { enrollNode, issueOwnerCredential } from '../../services/management-authority/enrolment-client.js';
import { tokenHash } from '../../services/management-authority/enrolment.js';
import { TABLES, type NodeRecord, type TokenRecord } from '../../services/management-authority/records.js';
import { startFederationSites, type FederationSites } from '../helpers/federation-harness.js';
import { disposeParties, heartbeatMessage, type Site, type SiteParties } from '../helpers/ma-harness.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';

let fed: FederationSites;
let victim: Site;
let a: SiteParties;
let b: SiteParties;
const EVIL = 'urn:fedlab:a.test:node:evil';

beforeAll(async () => {
  fed = await startFederationSites({
    sites: [
      { domain: 'a.test', nodes: 0 },
      { domain: 'b.test', nodes: 0 },
    ],
    dirPrefix: 'fedlab-enrol-peer-',
  });
  victim = fed.sites[0] as Site;
  a = fed.parties[0] as SiteParties;
  b = fed.parties[1] as SiteParties;
}, 120_000);
afterAll(async () => {
  await fed?.destroy();
  await disposeParties();
});

/** The foreign owner's owner → MA chain over a.test's nodes, signed with its own key. */
async function foreignChain(): Promise<string[]> {
  const { chain } = await issueOwnerCredential({
    ownerKey: b.owner.privateKey,
    ownerUrn: b.owner.urn,
    maUrn: a.maUrn,
    maKey: a.ma.jwk as Record<string, unknown>,
    ttlSeconds: 86_400,
  });
  return [...chain];
}

function enrolRequest(token: string, chain: string[]): EnrollNodeRequest {
  const { publicKey } = generateKeyPair('p256');
  return {
    token,
    publicKeyPem: publicKeyToPem(publicKey),
    csrPem: '',
    ownerCredentialChain: chain,
    endpoint: '127.0.0.1:7100',
    capacity: { cpuMillis: 64_000, memMb: 1_000_000, diskMb: 1_000_000, pids: 100_000, bandwidthKbps: 0 },
    isolation: SliverIsolation.SLIVER_ISOLATION_PROCESS,
    version: 'evil',
    netemAvailable: false,
  };
}

const enrol = (req: EnrollNodeRequest) => enrollNode({ address: victim.enrolAddress, caPem: a.pki.caPem, maUrn: a.maUrn }, req);

/** Rejects with PERMISSION_DENIED naming `rule`. */
async function denied(call: Promise<unknown>, rule: string): Promise<void> {
  const err = (await call.then(
    () => undefined,
    (e: unknown) => e,
  )) as { code?: number; metadata?: { get(k: string): unknown[] } } | undefined;
  expect(err, 'the call was expected to be refused').toBeDefined();
  expect(err?.code).toBe(Status.PERMISSION_DENIED);
  expect(String(err?.metadata?.get('fedlab-rule')[0])).toBe(rule);
}

async function state() {
  const store = victim.service!.store;
  const tokens = await store.table<TokenRecord>(TABLES.tokens).values();
  const nodes = await store.table<NodeRecord>(TABLES.nodes).values();
  const listed = (await victim.maClient().listNodes({ pageSize: 0, pageToken: '', health: 0 })).nodes.map((n) => n.urn);
  const issued = (await readCaState(a.pki.caDir)).issued.map((r) => r.urn);
  return { tokens, nodes, listed, issued };
}

describe('a peered domain owner enrolling a node into our site', { timeout: 60_000 }, () => {
  it('is PERMISSION_DENIED at every step, and no token, certificate or node record results', async () => {
    const before = await state();
    expect(b.owner.urn).toBe('urn:fedlab:b.test:owner:alice');

    // 1. The foreign owner asks a.test for a token for a node of its own, naming itself as the owner.
    await denied(
      victim.maClient(b.owner).createEnrollmentToken({ requestId: 'evil-1', nodeName: 'evil', ownerUrn: b.owner.urn, ttlS: 0 }),
      'owner-domain',
    );
    // 2. a.test's own administrator is talked into making the token for the foreign owner.
    await denied(
      victim.maClient(a.admin).createEnrollmentToken({ requestId: 'evil-2', nodeName: 'evil', ownerUrn: b.owner.urn, ttlS: 0 }),
      'owner-domain',
    );
    // 3. It redeems a leaked token of an a.test owner with its own owner → MA chain.
    const leaked = (
      await victim.maClient(a.admin).createEnrollmentToken({ requestId: 'leak-1', nodeName: 'evil', ownerUrn: a.owner.urn, ttlS: 0 })
    ).token;
    const chain = await foreignChain();
    await denied(enrol(enrolRequest(leaked, chain)), 'owner-domain');
    // 4. A token recorded before owners were held to the domain (as CreateEnrollmentToken wrote it then,
    //    with the foreign owner's key from its certificate) is redeemed with the same chain.
    const planted = 'fedlab-enrol.planted-before-the-fix';
    const now = Date.now();
    await victim.service!.store.table<TokenRecord>(TABLES.tokens).put(tokenHash(planted), {
      nodeUrn: EVIL,
      ownerUrn: b.owner.urn,
      ownerJwk: b.owner.jwk as Record<string, unknown>,
      createdBy: b.owner.urn,
      createdAt: now,
      expiresAt: now + 3_600_000,
      requestKey: `${b.owner.urn} old`,
    });
    await denied(enrol(enrolRequest(planted, chain)), 'owner-domain');
    // The main (mTLS) port's EnrollNode is the same check.
    await denied(victim.maClient(b.owner).enrollNode(enrolRequest(planted, chain)), 'owner-domain');
    // 5. It heartbeats as the node with its own certificate.
    const asOwner = fed.track(
      createClient(ManagementAuthorityService, {
        address: victim.address,
        tls: { caCerts: a.pki.caPem, cert: b.owner.certPem, key: b.owner.keyPem },
        serverUrn: a.maUrn,
      }),
    );
    await denied(
      asOwner.heartbeat(
        heartbeatMessage(EVIL, 1, {
          capacity: { cpuMillis: 64_000, memMb: 1_000_000, diskMb: 1_000_000, pids: 100_000, bandwidthKbps: 0 },
          version: 'evil',
          endpoint: '127.0.0.1:7100',
        }),
      ),
      'node_urn',
    );

    const after = await state();
    // No token for the foreign owner was made, none was redeemed; only the admin's (unused) and the planted one are new.
    const made = after.tokens.filter((t) => !before.tokens.some((x) => x.requestKey === t.requestKey));
    expect(made.map((t) => t.ownerUrn).sort()).toEqual([a.owner.urn, b.owner.urn].sort());
    expect(made.filter((t) => t.ownerUrn === b.owner.urn).map((t) => t.createdBy)).toEqual([b.owner.urn]);
    expect(after.tokens.every((t) => t.usedAt === undefined || before.tokens.some((x) => x.requestKey === t.requestKey))).toBe(true);
    expect(after.tokens.filter((t) => t.ownerUrn === b.owner.urn && t.requestKey !== `${b.owner.urn} old`)).toEqual([]);
    // a.test's CA certified nothing new, and there is no node record, in the store or in ListNodes.
    expect(after.issued).toEqual(before.issued);
    expect(after.issued).not.toContain(EVIL);
    expect(after.nodes.map((n) => n.urn)).toEqual(before.nodes.map((n) => n.urn));
    expect(after.nodes.map((n) => n.urn)).not.toContain(EVIL);
    expect(after.listed).toEqual(before.listed);
    expect(after.listed).not.toContain(EVIL);
  });
});
