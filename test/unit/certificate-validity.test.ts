// A connection's certificate checked against the time of each call and session message: the period its
// identity carries, read once when the identity was made.
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '../../certs/test-pki.js';
import { UnauthenticatedError } from '../../services/core/errors.js';
import { identityFromCertificate, parseCertificate, type CertIdentity } from '../../services/core/identity/certificate.js';
import { checkCertificateValidity } from '../../services/core/rpc/certificate-validity.js';

let pki: TestPki;
let identity: CertIdentity;

beforeAll(async () => {
  pki = await createTestPki({ domain: 'cv.test' });
  const user = await pki.issue('urn:fedlab:cv.test:user:u');
  identity = await identityFromCertificate(parseCertificate(user.certPem));
});
afterAll(async () => {
  await rm(pki.dir, { recursive: true, force: true });
});

function refusal(fn: () => void): UnauthenticatedError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err as UnauthenticatedError;
  }
}

describe('certificate validity at each call', () => {
  it("an identity carries its certificate's period, read once", () => {
    expect(identity.validFromMs).toBe(Date.parse(identity.certificate.validFrom));
    expect(identity.validToMs).toBe(Date.parse(identity.certificate.validTo));
    expect(Number.isFinite(identity.validToMs)).toBe(true);
  });

  it('inside the period passes; after it, UNAUTHENTICATED naming the rule; before it, the clocks', () => {
    expect(refusal(() => checkCertificateValidity(identity, identity.validFromMs + 1000))).toBeUndefined();
    const late = refusal(() => checkCertificateValidity(identity, identity.validToMs + 1));
    expect(late).toBeInstanceOf(UnauthenticatedError);
    expect(late?.message).toMatch(/expired since this connection was made/);
    expect(late?.details).toMatchObject({ rule: 'certificate_validity' });
    expect(refusal(() => checkCertificateValidity(identity, identity.validFromMs - 1))?.message).toMatch(/not valid yet/);
  });

  it("the identity's period is the one checked", () => {
    // An identity whose period ended (as the one made for a connection) is refused although its certificate is valid now.
    const ended = { ...identity, validToMs: Date.now() - 1 };
    expect(refusal(() => checkCertificateValidity(ended))).toBeInstanceOf(UnauthenticatedError);
    expect(refusal(() => checkCertificateValidity(identity))).toBeUndefined();
  });

  it('an unreadable period (NaN) refuses every time', () => {
    expect(refusal(() => checkCertificateValidity({ validFromMs: NaN, validToMs: NaN }))).toBeInstanceOf(UnauthenticatedError);
  });
});
