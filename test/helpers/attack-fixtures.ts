// What an attack on the federation of attack-federation.ts needs to exist first: acme's slices `main` (a
// sliver on node n1) and `side` (on n2), beta's slice, the credential chains every principal legitimately
// holds (acme's slice credential on main, beta's on its own slice, bob's member chain on side, the MA's
// owner chain over n1, the slice authority's MA → SA chain), a chain a peer domain's owner mints for
// itself over our domain, a heartbeating node of the test's own, and URNs of objects that do not exist.
import { delegate, emptyRevocationList, issueRoot, newJti, PRIVILEGES, signRevocationList } from '../../services/core/credentials/index.js';
import { publicKeyToPem } from '../../services/core/identity/keys.js';
import { issueOwnerCredential, OWNER_PRIVILEGES } from '../../services/management-authority/enrolment-client.js';
import type { Slice } from '../../services/generated/fedlab/v1/slice_authority.js';
import type { AttackFederation, Principal } from './attack-federation.js';
import { siteRequest } from './federation-harness.js';
import { enrolFakeNode, type FakeNode } from './ma-harness.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';

/** The objects and chains of an attack. */
export interface AttackFixtures {
  /** acme's slice with one sliver on n1, its sliver and that sliver's expiry. */
  readonly main: { readonly urn: string; readonly sliverUrn: string; readonly sliverExpiresAt: Date; readonly expiresAt: Date };
  readonly side: { readonly urn: string };
  readonly betaSlice: { readonly urn: string };
  readonly chains: {
    /** acme's slice credential on main (SA → acme, one more delegation allowed). */
    readonly acme: readonly string[];
    /** A second credential on main that a test may revoke. */
    readonly acmeSpare: { readonly chain: readonly string[]; readonly jti: string };
    readonly beta: readonly string[];
    /** SA → acme → bob on side. */
    readonly bob: readonly string[];
    /** owner → MA over the home site's nodes (held by the MA). */
    readonly owner: readonly string[];
    /** MA → SA of the home site (held by the slice authority). */
    readonly maToSa: readonly string[];
    /** b.test's owner's own root over everything of a.test, every privilege. */
    readonly peer: readonly string[];
  };
  /** A node of the test's own (no node manager): it sends heartbeats with its own certificate. */
  readonly heartbeatNode: FakeNode & { readonly principal: Principal };
  /** The slice authority's signed revocation list (empty). */
  readonly saSignedList: string;
  /** The home site's terms digest. */
  readonly termsDigest: string;
  /** URNs and names of objects that exist nowhere. */
  readonly absent: { readonly slice: string; readonly sliver: string; readonly node: string; readonly name: string; readonly jti: string };
  /** A fresh enrolment request for a new node: a token from the admin and the owner's chain. */
  enrolment(nodeName: string, withChain: boolean): Promise<Record<string, unknown>>;
}

async function createSlice(fed: AttackFederation, who: Principal, name: string, nodeUrn: string): Promise<Slice> {
  const res = await fed.saClient(who).createSlice({
    users: [],
    requestId: `fx-${name}`,
    name,
    description: 'attack fixture',
    mode: 0,
    sites: [siteRequest('a.test', { nodeUrns: [nodeUrn] })],
    start: true,
    wait: true,
  });
  const slice = res.slice;
  if (!slice?.slivers[0]) throw new Error(`fixture slice ${name} has no sliver (state ${slice?.state})`);
  return slice;
}

async function sliceCredential(fed: AttackFederation, who: Principal, sliceUrn: string, requestId: string, dlg = 1) {
  return fed.saClient(who).issueSliceCredential({
    requestId,
    sliceUrn,
    holderCertificatePem: who.certPem,
    privileges: [],
    targets: [],
    ttlS: 0,
    maxDelegations: dlg,
  });
}

/** Makes the fixtures (slices take a few seconds: they are real slivers on real node managers). */
export async function makeAttackFixtures(fed: AttackFederation): Promise<AttackFixtures> {
  const { who, home, site } = fed;
  const [n1, n2] = fed.nodes;
  if (!n1 || !n2) throw new Error('the attack federation has two home nodes');
  const main = await createSlice(fed, who.acme, 'main', n1.urn);
  const side = await createSlice(fed, who.acme, 'side', n2.urn);
  const betaSlice = await createSlice(fed, who.beta, 'beta-slice', n2.urn);
  const acme = await sliceCredential(fed, who.acme, main.urn, 'fx-acme');
  const spare = await sliceCredential(fed, who.acme, main.urn, 'fx-acme-spare');
  const beta = await sliceCredential(fed, who.beta, betaSlice.urn, 'fx-beta');
  const acmeSide = await sliceCredential(fed, who.acme, side.urn, 'fx-acme-side');
  const bob = await delegate(acmeSide.chain, {
    key: (who.acme.identity as NonNullable<Principal['identity']>).privateKey,
    subject: who.bob.urn,
    subjectKey: (who.bob.identity as NonNullable<Principal['identity']>).jwk as Record<string, unknown>,
    dlg: 0,
  });
  const peerOwner = fed.peer.owner;
  const peer = await issueRoot({
    key: peerOwner.privateKey,
    issuer: peerOwner.urn,
    subject: peerOwner.urn,
    subjectKey: peerOwner.jwk as Record<string, unknown>,
    targets: ['urn:fedlab:a.test:*'],
    privileges: [...PRIVILEGES],
    dlg: 3,
    ttlSeconds: 86_400,
  });
  const maToSa = await site.saChain({ requestId: 'fx-ma-sa' });
  const fake = await enrolFakeNode(site, 'hb');
  await fake.beat();
  const termsDigest = (await fed.aggClient(who.acme).getVersion({})).termsDigest;
  const sliver = main.slivers[0];
  return {
    main: {
      urn: main.urn,
      sliverUrn: sliver?.urn ?? '',
      sliverExpiresAt: sliver?.expiresAt ?? new Date(Date.now() + 3_600_000),
      expiresAt: main.expiresAt ?? new Date(Date.now() + 3_600_000),
    },
    side: { urn: side.urn },
    betaSlice: { urn: betaSlice.urn },
    chains: {
      acme: acme.chain,
      acmeSpare: { chain: spare.chain, jti: spare.jti },
      beta: beta.chain,
      bob: bob.chain,
      owner: n1.ownerChain,
      maToSa,
      peer: peer.chain,
    },
    heartbeatNode: {
      ...fake,
      principal: { urn: fake.urn, certPem: fake.tls.cert, keyPem: fake.tls.key },
    },
    saSignedList: signRevocationList(emptyRevocationList(home.sa.privateKey, home.sa.urn), home.sa.privateKey),
    termsDigest,
    absent: {
      slice: 'urn:fedlab:a.test:slice:mx-absent',
      sliver: 'urn:fedlab:a.test:sliver:mx-absent',
      node: 'urn:fedlab:a.test:node:mx-absent',
      name: 'mx-absent',
      jti: newJti(),
    },
    enrolment: async (nodeName, withChain) => {
      const { token } = await fed
        .maClient(who.admin)
        .createEnrollmentToken({ requestId: `fx-enrol-${nodeName}`, nodeName, ownerUrn: home.owner.urn, ttlS: 0 });
      const { chain } = await issueOwnerCredential({
        ownerKey: home.owner.privateKey,
        ownerUrn: home.owner.urn,
        maUrn: home.maUrn,
        maKey: home.ma.jwk as Record<string, unknown>,
        privileges: OWNER_PRIVILEGES,
        ttlSeconds: 86_400,
      });
      const keys = generateKeyPair('p256');
      return {
        token,
        publicKeyPem: publicKeyToPem(keys.publicKey),
        ownerCredentialChain: withChain ? [...chain] : [],
        endpoint: '127.0.0.1:9',
        capacity: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64 },
        isolation: 'SLIVER_ISOLATION_SIMULATED',
        version: 'test',
      };
    },
  };
}
