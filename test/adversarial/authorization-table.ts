// The authorisation matrix (issue 15, docs/api.md "Access rules"): for every method of the API, who the
// right principal is, the request it makes, and the code each class of caller gets — one row per method,
// in the order the rows run (creates before the reads of what they made, deletes last). A row with
// `absent` names an object: the classes refused on the object that exists must get the very same code for
// one that does not (an answer never tells a caller who may not see an object whether it exists).
import type { JsonObject } from '@bufbuild/protobuf';
import { newJti } from '../../services/core/credentials/index.js';
import type { AttackFederation } from '../helpers/attack-federation.js';
import type { AttackFixtures } from '../helpers/attack-fixtures.js';
import type { CallerClass, RightPrincipal } from '../helpers/caller-classes.js';
import { siteRequest } from '../helpers/federation-harness.js';

/** Status names as the table writes them. */
const OK = 'OK';
const UNAUTH = 'UNAUTHENTICATED';
const DENIED = 'PERMISSION_DENIED';
const NOTFOUND = 'NOT_FOUND';
const INVALID = 'INVALID_ARGUMENT';
const UNAVAIL = 'UNAVAILABLE';
type Code = typeof OK | typeof UNAUTH | typeof DENIED | typeof NOTFOUND | typeof INVALID | typeof UNAVAIL;

/** Expected codes in CALLER_CLASSES order: right, noChain, peer, provider, member, node, otherAdmin, foreignCa. */
export type Want = readonly [Code, Code, Code, Code, Code, Code, Code, Code];

type Build = (fx: AttackFixtures, fed: AttackFederation, cls: CallerClass) => JsonObject | Promise<JsonObject>;

/** One row: a method. */
export interface MatrixRow {
  readonly as: RightPrincipal;
  readonly request: Build;
  /** The request naming an object that does not exist. */
  readonly absent?: Build;
  readonly want: Want;
}

// Profiles shared by many rows (columns as in Want).
/** Open to every authenticated principal of this domain or a peered one. */
const OPEN: Want = [OK, OK, OK, OK, OK, OK, OK, UNAVAIL];
/** Only the right principal, known by its certificate (an administrator, the node or the provider itself). */
const BY_CERTIFICATE: Want = [OK, OK, DENIED, DENIED, DENIED, DENIED, DENIED, UNAVAIL];
/** A call that needs a credential chain (node managers, the aggregate). */
const CHAIN: Want = [OK, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAVAIL];
/** A slice authority call on one of the caller's slices: another provider is told the slice does not exist. */
const OWN_SLICE: Want = [OK, OK, DENIED, NOTFOUND, DENIED, DENIED, DENIED, UNAVAIL];
/** A slice authority call any provider with an account may make. */
const ACCOUNT: Want = [OK, OK, DENIED, OK, DENIED, DENIED, DENIED, UNAVAIL];

const AGG_SLICE = 'urn:fedlab:a.test:slice:mx-agg';
const NM_SLIVER = 'urn:fedlab:a.test:sliver:mx-nm';
const MA_REVOKED = newJti();
const later = (ms: number): string => new Date(Date.now() + ms).toISOString();
const lower = (cls: CallerClass): string => cls.toLowerCase();
const n1 = (fed: AttackFederation): string => (fed.nodes[0] as { urn: string }).urn;
const n2 = (fed: AttackFederation): string => (fed.nodes[1] as { urn: string }).urn;
const nodeRequest = (urn: string): JsonObject => siteRequest('a.test', { nodeUrns: [urn] }) as unknown as JsonObject;

/** The jti of the first credential the provider delegated to `member` (read from its store). */
async function delegatedJti(fed: AttackFederation, member: string): Promise<string> {
  const rows = await fed.sp.service.store.table<{ jti: string }>('member-delegations').values({ prefix: `${member} ` });
  return rows[0]?.jti ?? 'mx-no-delegation';
}

/** The matrix. Keys are `Service.Method` as the descriptor set names them. */
export const AUTHORIZATION_TABLE: Readonly<Record<string, MatrixRow>> = {
  'Federation.GetBundle': { as: 'provider', request: () => ({}), want: OPEN },
  'Admin.Snapshot': { as: 'site-admin', request: () => ({}), want: BY_CERTIFICATE },
  'Admin.ListEvents': { as: 'site-admin', request: () => ({}), want: BY_CERTIFICATE },

  // ---- ManagementAuthority ----------------------------------------------------------------------
  'ManagementAuthority.CreateEnrollmentToken': {
    as: 'site-admin',
    // A peer domain's owner asks for a token naming itself (the enrolment attack of issue 15).
    request: (_fx, fed, cls) => ({
      requestId: `mx-token-${cls}`,
      nodeName: `mx-token-${lower(cls)}`,
      ownerUrn: cls === 'peer' ? fed.who.peerOwner.urn : fed.home.owner.urn,
    }),
    want: BY_CERTIFICATE,
  },
  'ManagementAuthority.EnrollNode': {
    as: 'token',
    // The token is the credential: only the right principal holds one (the chain is the owner's).
    request: (fx, _fed, cls) =>
      cls === 'right' || cls === 'noChain'
        ? (fx.enrolment(`mx-enrolled-${lower(cls)}`, cls === 'right') as Promise<JsonObject>)
        : { token: '', publicKeyPem: '', endpoint: '127.0.0.1:9', version: 'x' },
    want: [OK, INVALID, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAVAIL],
  },
  'ManagementAuthority.Heartbeat': {
    as: 'heartbeat-node',
    request: (fx) => ({
      nodeUrn: fx.heartbeatNode.urn,
      sequence: 100,
      sentAt: new Date().toISOString(),
      capacity: { cpuMillis: 1000, memMb: 1024, diskMb: 1024, pids: 512 },
      version: 'test',
      endpoint: '127.0.0.1:9',
    }),
    absent: (fx) => ({ nodeUrn: fx.absent.node, sequence: 1 }),
    want: BY_CERTIFICATE,
  },
  // The same message as one message of a stream: the caller is checked when the stream opens, the message as Heartbeat's.
  'ManagementAuthority.HeartbeatStream': {
    as: 'heartbeat-node',
    request: (fx) => ({
      nodeUrn: fx.heartbeatNode.urn,
      sequence: 101,
      sentAt: new Date().toISOString(),
      capacity: { cpuMillis: 1000, memMb: 1024, diskMb: 1024, pids: 512 },
      version: 'test',
      endpoint: '127.0.0.1:9',
    }),
    absent: (fx) => ({ nodeUrn: fx.absent.node, sequence: 1 }),
    want: BY_CERTIFICATE,
  },
  'ManagementAuthority.ListNodes': { as: 'site-admin', request: () => ({ pageSize: 10 }), want: BY_CERTIFICATE },
  'ManagementAuthority.GetNode': { as: 'provider', request: (_fx, fed) => ({ nodeUrn: n1(fed) }), want: OPEN },
  'ManagementAuthority.RegisterServiceProvider': {
    as: 'provider',
    request: (fx, fed) => ({
      requestId: 'mx-register',
      providerUrn: fed.who.acme.urn,
      certificatePem: fed.who.acme.certPem,
      contact: 'ops@acme.test',
      acceptedTermsDigest: fx.termsDigest,
    }),
    want: BY_CERTIFICATE,
  },
  'ManagementAuthority.DelegateToSliceAuthority': {
    as: 'site-admin',
    request: (_fx, fed, cls) => ({
      requestId: `mx-delegate-${cls}`,
      sliceAuthorityUrn: fed.home.sa.urn,
      sliceAuthorityCertificatePem: fed.home.sa.certPem,
    }),
    want: BY_CERTIFICATE,
  },
  'ManagementAuthority.Revoke': {
    as: 'site-admin',
    request: () => ({ jti: MA_REVOKED, reason: 'authorisation matrix' }),
    absent: (fx) => ({ jti: fx.absent.jti, reason: 'authorisation matrix' }),
    want: BY_CERTIFICATE,
  },
  'ManagementAuthority.ListRevocations': { as: 'provider', request: () => ({}), want: OPEN },

  // ---- Aggregate: one slice's whole life at the site --------------------------------------------
  'Aggregate.GetVersion': { as: 'provider', request: () => ({}), want: OPEN },
  'Aggregate.ListResources': { as: 'provider', request: () => ({}), want: OPEN },
  'Aggregate.Allocate': {
    as: 'sa-chain',
    request: (_fx, fed) => ({
      requestId: 'mx-alloc',
      sliceUrn: AGG_SLICE,
      providerUrn: fed.who.acme.urn,
      request: nodeRequest(n1(fed)).request as JsonObject,
    }),
    want: CHAIN,
  },
  'Aggregate.Provision': {
    as: 'sa-chain',
    request: () => ({ urns: [AGG_SLICE] }),
    absent: (fx) => ({ urns: [fx.absent.slice] }),
    want: CHAIN,
  },
  'Aggregate.PerformOperationalAction': {
    as: 'sa-chain',
    request: () => ({ urns: [AGG_SLICE], action: 'OPERATIONAL_ACTION_START' }),
    absent: (fx) => ({ urns: [fx.absent.slice], action: 'OPERATIONAL_ACTION_START' }),
    want: CHAIN,
  },
  'Aggregate.Status': {
    as: 'sa-chain',
    request: () => ({ urns: [AGG_SLICE] }),
    absent: (fx) => ({ urns: [fx.absent.slice] }),
    want: CHAIN,
  },
  'Aggregate.Describe': {
    as: 'sa-chain',
    request: () => ({ urns: [AGG_SLICE] }),
    absent: (fx) => ({ urns: [fx.absent.slice] }),
    want: CHAIN,
  },
  'Aggregate.Renew': {
    as: 'sa-chain',
    request: () => ({ urns: [AGG_SLICE], expiresAt: later(2 * 3_600_000) }),
    absent: (fx) => ({ urns: [fx.absent.slice], expiresAt: later(2 * 3_600_000) }),
    want: CHAIN,
  },
  'Aggregate.Shutdown': {
    // For the site's administrators and the slice's own authority, known by its certificate.
    as: 'sa',
    request: () => ({ sliceUrn: AGG_SLICE, reason: 'authorisation matrix' }),
    absent: (fx) => ({ sliceUrn: fx.absent.slice, reason: 'authorisation matrix' }),
    want: BY_CERTIFICATE,
  },
  'Aggregate.UpdateRevocations': { as: 'sa-chain', request: (fx) => ({ signedList: fx.saSignedList }), want: CHAIN },
  'Aggregate.Delete': {
    as: 'sa-chain',
    request: () => ({ urns: [AGG_SLICE] }),
    absent: (fx) => ({ urns: [fx.absent.slice] }),
    want: CHAIN,
  },

  // ---- NodeManager (node n1, which holds main's sliver) ------------------------------------------
  'NodeManager.GetNodeInfo': { as: 'owner-chain', request: () => ({}), want: CHAIN },
  'NodeManager.CreateSliver': {
    as: 'owner-chain',
    request: (fx, fed) => ({
      requestId: 'mx-nm',
      sliverUrn: NM_SLIVER,
      sliceUrn: fx.main.urn,
      sliceAuthorityUrn: fed.home.sa.urn,
      sliceAuthorityJwk: JSON.stringify(fed.home.sa.jwk),
      providerUrn: fed.who.acme.urn,
      resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64 },
    }),
    want: CHAIN,
  },
  'NodeManager.GetSliver': {
    as: 'slice-chain',
    request: (fx) => ({ sliverUrn: fx.main.sliverUrn }),
    absent: (fx) => ({ sliverUrn: fx.absent.sliver }),
    want: CHAIN,
  },
  'NodeManager.ListSlivers': {
    as: 'slice-chain',
    request: (fx) => ({ sliceUrn: fx.main.urn }),
    absent: (fx) => ({ sliceUrn: fx.absent.slice }),
    want: CHAIN,
  },
  'NodeManager.RenewSliver': {
    as: 'slice-chain',
    request: (fx) => ({ sliverUrn: fx.main.sliverUrn, expiresAt: later(3_600_000) }),
    absent: (fx) => ({ sliverUrn: fx.absent.sliver, expiresAt: later(3_600_000) }),
    want: CHAIN,
  },
  'NodeManager.ControlSliver': {
    as: 'slice-chain',
    request: (fx) => ({ sliverUrn: fx.main.sliverUrn, action: 'SLIVER_ACTION_START' }),
    absent: (fx) => ({ sliverUrn: fx.absent.sliver, action: 'SLIVER_ACTION_START' }),
    want: CHAIN,
  },
  'NodeManager.Exec': {
    as: 'slice-chain',
    request: (fx) => ({ sliverUrn: fx.main.sliverUrn, argv: ['true'] }),
    absent: (fx) => ({ sliverUrn: fx.absent.sliver, argv: ['true'] }),
    want: CHAIN,
  },
  'NodeManager.GetSliverOutput': {
    as: 'slice-chain',
    request: (fx) => ({ sliverUrn: fx.main.sliverUrn }),
    absent: (fx) => ({ sliverUrn: fx.absent.sliver }),
    want: CHAIN,
  },
  'NodeManager.UpdateRevocations': { as: 'owner-chain', request: () => ({ signedLists: [] }), want: CHAIN },
  'NodeManager.UpdateSliverUsers': {
    // Owner-rooted only (the MA relays the slice's users): a valid chain of the slice's own authority is PERMISSION_DENIED.
    as: 'owner-chain',
    request: (fx) => ({ sliverUrn: fx.main.sliverUrn, users: [] }),
    absent: (fx) => ({ sliverUrn: fx.absent.sliver, users: [] }),
    want: [OK, UNAUTH, UNAUTH, DENIED, DENIED, UNAUTH, UNAUTH, UNAVAIL],
  },
  'NodeManager.DeleteSliver': {
    // Owner-rooted only: a valid chain of the sliver's own slice authority is PERMISSION_DENIED.
    as: 'owner-chain',
    request: () => ({ sliverUrn: NM_SLIVER }),
    absent: (fx) => ({ sliverUrn: fx.absent.sliver }),
    want: [OK, UNAUTH, UNAUTH, DENIED, DENIED, UNAUTH, UNAUTH, UNAVAIL],
  },

  // ---- SliceAuthority ----------------------------------------------------------------------------
  'SliceAuthority.CreateSlice': {
    as: 'provider',
    request: (_fx, fed, cls) => ({
      requestId: `mx-new-${cls}`,
      name: `mx-new-${lower(cls)}`,
      sites: [nodeRequest(n2(fed))],
      wait: true,
    }),
    want: ACCOUNT,
  },
  'SliceAuthority.GetSlice': {
    as: 'provider',
    request: (fx) => ({ sliceUrn: fx.main.urn }),
    absent: (fx) => ({ sliceUrn: fx.absent.slice }),
    want: OWN_SLICE,
  },
  'SliceAuthority.ListSlices': { as: 'provider', request: () => ({}), want: ACCOUNT },
  'SliceAuthority.RenewSlice': {
    as: 'provider',
    request: (fx) => ({ sliceUrn: fx.main.urn, expiresAt: new Date(fx.main.expiresAt.getTime() + 60_000).toISOString() }),
    absent: (fx) => ({ sliceUrn: fx.absent.slice, expiresAt: new Date(fx.main.expiresAt.getTime() + 60_000).toISOString() }),
    want: OWN_SLICE,
  },
  'SliceAuthority.UpdateSliceUsers': {
    // Who may call it as for RenewSlice; removing a user the slice does not have changes nothing.
    as: 'provider',
    request: (fx, _fed, cls) => ({ requestId: `mx-users-${cls}`, sliceUrn: fx.main.urn, remove: ['urn:fedlab:a.test:user:mx-nobody'] }),
    absent: (fx) => ({ requestId: 'mx-users-absent', sliceUrn: fx.absent.slice, remove: ['urn:fedlab:a.test:user:mx-nobody'] }),
    want: OWN_SLICE,
  },
  'SliceAuthority.WatchSlice': {
    as: 'provider',
    request: (fx) => ({ sliceUrn: fx.main.urn }),
    absent: (fx) => ({ sliceUrn: fx.absent.slice }),
    want: OWN_SLICE,
  },
  'SliceAuthority.IssueSliceCredential': {
    as: 'provider',
    request: (fx, fed, cls) => ({ requestId: `mx-issue-${cls}`, sliceUrn: fx.main.urn, holderCertificatePem: fed.who.acme.certPem }),
    absent: (fx, fed) => ({ requestId: 'mx-issue-absent', sliceUrn: fx.absent.slice, holderCertificatePem: fed.who.acme.certPem }),
    want: OWN_SLICE,
  },
  'SliceAuthority.Revoke': {
    // A provider revokes only credentials issued for its own slices; any other jti is refused alike.
    as: 'provider',
    request: (fx) => ({ jti: fx.chains.acmeSpare.jti, reason: 'authorisation matrix' }),
    absent: (fx) => ({ jti: fx.absent.jti, reason: 'authorisation matrix' }),
    want: BY_CERTIFICATE,
  },
  'SliceAuthority.ListRevocations': { as: 'provider', request: () => ({}), want: ACCOUNT },
  'SliceAuthority.DeleteSlice': {
    as: 'provider',
    request: () => ({ sliceUrn: 'urn:fedlab:a.test:slice:mx-new-right' }),
    absent: (fx) => ({ sliceUrn: fx.absent.slice }),
    want: OWN_SLICE,
  },

  // ---- ServiceProvider -----------------------------------------------------------------------------
  'ServiceProvider.Deploy': {
    as: 'operator',
    request: (fx) => ({
      requestId: 'mx-deploy',
      name: 'mx-deploy',
      spec: { sliceUrn: fx.main.urn, steps: [{ name: 'noop', argv: ['true'] }] },
    }),
    want: BY_CERTIFICATE,
  },
  'ServiceProvider.GetDeployment': {
    as: 'operator',
    request: () => ({ name: 'mx-deploy' }),
    absent: (fx) => ({ name: fx.absent.name }),
    want: BY_CERTIFICATE,
  },
  'ServiceProvider.ListDeployments': { as: 'operator', request: () => ({}), want: BY_CERTIFICATE },
  'ServiceProvider.ListMembers': { as: 'operator', request: () => ({ includeRemoved: true }), want: BY_CERTIFICATE },
  'ServiceProvider.AddMember': {
    as: 'operator',
    request: (_fx, fed) => ({
      requestId: 'mx-carol',
      memberUrn: fed.who.carol.urn,
      certificatePem: fed.who.carol.certPem,
      displayName: 'Carol',
    }),
    want: BY_CERTIFICATE,
  },
  'ServiceProvider.DelegateToMember': {
    as: 'operator',
    request: (fx, fed) => ({ requestId: 'mx-carol-main', memberUrn: fed.who.carol.urn, sliceUrn: fx.main.urn }),
    absent: (fx) => ({ requestId: 'mx-absent-main', memberUrn: 'urn:fedlab:a.test:user:mx-absent', sliceUrn: fx.main.urn }),
    want: BY_CERTIFICATE,
  },
  // carol's credential from DelegateToMember, as the provider recorded it (again: already_revoked).
  'ServiceProvider.RevokeMemberCredential': {
    as: 'operator',
    request: async (_fx, fed) => ({ memberUrn: fed.who.carol.urn, jti: await delegatedJti(fed, fed.who.carol.urn) }),
    absent: (_fx, fed) => ({ memberUrn: fed.who.carol.urn, jti: 'mx-absent-jti' }),
    want: BY_CERTIFICATE,
  },
  'ServiceProvider.DeleteDeployment': {
    as: 'operator',
    request: () => ({ name: 'mx-deploy', keepSlice: true }),
    absent: (fx) => ({ name: fx.absent.name, keepSlice: true }),
    want: BY_CERTIFICATE,
  },
  // Last: it revokes carol's credentials. Again on a removed member answers the same (idempotent).
  'ServiceProvider.RemoveMember': {
    as: 'operator',
    request: (_fx, fed) => ({ memberUrn: fed.who.carol.urn }),
    absent: () => ({ memberUrn: 'urn:fedlab:a.test:user:mx-absent' }),
    want: BY_CERTIFICATE,
  },
};
