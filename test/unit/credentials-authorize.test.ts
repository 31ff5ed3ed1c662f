// authorize() as handlers call it: the caller identity comes from a real X.509 certificate (test PKI),
// the chain from metadata; failures carry the gRPC code, link and rule the RPC edge sends.
import { X509Certificate } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  NO_REVOCATIONS,
  TrustStore,
  authorize,
  delegate,
  isCredentialError,
  issueRoot,
  type AuthorizeDeps,
} from '../../services/core/credentials/index.js';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { identityFromCertificate, type CertIdentity } from '../../services/core/identity/certificate.js';
import { parseTrustBundle } from '../../services/core/identity/trust-bundle.js';
import { codeForKind } from '../../services/core/rpc/status.js';
import { makeTestPki, type TestIdentity } from '../helpers/pki.js';

const NODE = 'urn:fedlab:plc.test:node:n1';
let ma: TestIdentity;
let sa: TestIdentity;
let sp: TestIdentity;
let other: TestIdentity;
let spPeer: CertIdentity;
let otherPeer: CertIdentity;
let chain: readonly string[];
let deps: AuthorizeDeps;

beforeAll(async () => {
  const pki = await makeTestPki('plc.test');
  ma = await pki.issue('urn:fedlab:plc.test:authority:ma');
  sa = await pki.issue('urn:fedlab:plc.test:authority:sa', { alg: 'ed25519' });
  sp = await pki.issue('urn:fedlab:plc.test:sp:acme');
  other = await pki.issue('urn:fedlab:plc.test:sp:other');
  const built = await pki.bundle();
  const trust = new TrustStore();
  trust.addBundle(await parseTrustBundle(built.bundle));
  deps = { trust, revocations: NO_REVOCATIONS, cache: null };
  spPeer = await identityFromCertificate(new X509Certificate(sp.certPem));
  otherPeer = await identityFromCertificate(new X509Certificate(other.certPem));
  const root = await issueRoot({
    key: ma.privateKey,
    issuer: ma.urn,
    subject: sa.urn,
    subjectKey: sa.jwk,
    targets: ['urn:fedlab:plc.test:node:*'],
    privileges: ['sliver.create', 'node.read'],
    dlg: 1,
  });
  chain = (await delegate(root.chain, { key: sa.privateKey, subject: sp.urn, subjectKey: sp.jwk, privileges: ['sliver.create'] })).chain;
});

function failure(fn: () => unknown): { code: number; link: number; rule: string } {
  try {
    fn();
  } catch (err) {
    if (!isCredentialError(err)) throw err;
    return { code: codeForKind(err.kind), link: err.link, rule: err.rule };
  }
  throw new Error('expected a refusal');
}

describe('authorize', () => {
  it("grants the caller whose TLS certificate holds the leaf's key and URN", () => {
    const g = authorize({ peer: spPeer, chain }, 'sliver.create', NODE, deps);
    expect(g.holder).toEqual({ urn: sp.urn, thumbprint: sp.kid });
    expect(g.issuers).toEqual([ma.urn, sa.urn]);
  });

  it('UNAUTHENTICATED when no chain was sent', () => {
    expect(failure(() => authorize({ peer: spPeer, chain: [] }, 'sliver.create', NODE, deps))).toEqual({
      code: status.UNAUTHENTICATED,
      link: 0,
      rule: 'missing',
    });
  });

  it("UNAUTHENTICATED when another principal presents the provider's chain", () => {
    expect(failure(() => authorize({ peer: otherPeer, chain }, 'sliver.create', NODE, deps))).toEqual({
      code: status.UNAUTHENTICATED,
      link: 1,
      rule: 'holder-key',
    });
  });

  it('PERMISSION_DENIED when the chain does not grant the call', () => {
    expect(failure(() => authorize({ peer: spPeer, chain }, 'node.read', NODE, deps))).toEqual({
      code: status.PERMISSION_DENIED,
      link: 1,
      rule: 'grant-privilege',
    });
    expect(failure(() => authorize({ peer: spPeer, chain }, 'sliver.create', 'urn:fedlab:emulab.test:node:n1', deps))).toEqual({
      code: status.PERMISSION_DENIED,
      link: 1,
      rule: 'grant-object',
    });
  });

  it('INVALID_ARGUMENT when the handler passes something that is not a URN', () => {
    expect(() => authorize({ peer: spPeer, chain }, 'sliver.create', 'urn:fedlab:plc.test:node:*', deps)).toThrow(InvalidArgumentError);
  });

  it('uses the clock it is given', () => {
    const late = { ...deps, now: () => new Date(Date.now() + 40 * 86_400_000) };
    expect(failure(() => authorize({ peer: spPeer, chain }, 'sliver.create', NODE, late))).toEqual({
      code: status.UNAUTHENTICATED,
      link: 0,
      rule: 'expired',
    });
  });
});
