// SANs are read from the certificate's ASN.1, never from Node's printed text: a DNS name that
// holds ", URI:urn:fedlab:…" must not pass for a URI subjectAltName of its own.
import { webcrypto, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { x509 } from '../../certs/x509-provider.js';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { fedlabUrnsOf, identityFromCertificate, identityOfField, uriSans } from '../../services/core/identity/certificate.js';

async function selfSigned(names: { type: 'dns' | 'url'; value: string }[]): Promise<X509Certificate> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=san-test',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    signingAlgorithm: alg,
    keys: keys as never,
    extensions: [new x509.SubjectAlternativeNameExtension(names)],
  });
  return new X509Certificate(Buffer.from(cert.rawData));
}

describe('certificate subjectAltNames', () => {
  it('a DNS name carrying ", URI:urn:fedlab:…" names no URN', async () => {
    const cert = await selfSigned([{ type: 'dns', value: 'evil.test, URI:urn:fedlab:a.test:authority:ma' }]);
    expect(uriSans(cert)).toEqual([]);
    expect(fedlabUrnsOf(cert)).toEqual([]);
    await expect(identityFromCertificate(cert)).rejects.toThrow(/no urn:fedlab URI subjectAltName/);
  });

  it('the one real URI is found beside such a DNS name, and two real URNs are refused', async () => {
    const one = await selfSigned([
      { type: 'dns', value: 'x.test, URI:urn:fedlab:a.test:authority:ma' },
      { type: 'url', value: 'urn:fedlab:b.test:node:n1' },
    ]);
    expect(fedlabUrnsOf(one)).toEqual(['urn:fedlab:b.test:node:n1']);
    expect((await identityFromCertificate(one)).urn).toBe('urn:fedlab:b.test:node:n1');
    const two = await selfSigned([
      { type: 'url', value: 'urn:fedlab:b.test:node:n1' },
      { type: 'url', value: 'urn:fedlab:b.test:node:n2' },
    ]);
    await expect(identityFromCertificate(two)).rejects.toThrow(/more than one/);
  });
});

describe('a certificate sent in a request field', () => {
  it('whose key cannot be read is INVALID_ARGUMENT naming the field, not an internal error', async () => {
    const cert = await selfSigned([{ type: 'url', value: 'urn:fedlab:b.test:sp:acme' }]);
    expect((await identityOfField(cert.toString(), 'certificate_pem')).urn).toBe('urn:fedlab:b.test:sp:acme');
    // The uncompressed P-256 point (0x04 then 64 bytes) moved off the curve: the certificate still parses.
    const der = Buffer.from(cert.raw);
    const at = der.indexOf(Buffer.from((cert.publicKey.export({ format: 'der', type: 'spki' }) as Buffer).subarray(-65)));
    der[at + 64] = der[at + 64]! ^ 0xff;
    const broken = `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`;
    const err = await identityOfField(broken, 'certificate_pem').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).details).toEqual({ field: 'certificate_pem' });
    expect((err as Error).message).toMatch(/^certificate_pem: /);
  });
});
