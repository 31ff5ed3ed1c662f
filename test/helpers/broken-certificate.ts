// A certificate that X.509 parsing accepts but whose public key cannot be read (the EC point's form byte
// changed from 04, uncompressed, to 05): what the wire fuzzer sent to make servers answer INTERNAL.
import { X509Certificate } from 'node:crypto';

/** `pem` (a P-256 certificate) with its public key made unreadable; the signature no longer verifies either. */
export function unreadableKeyCertificate(pem: string): string {
  const der = Buffer.from(new X509Certificate(pem).raw);
  // BIT STRING of 66 bytes, no unused bits, then the uncompressed point's 04.
  const at = der.indexOf(Buffer.from([0x03, 0x42, 0x00, 0x04]));
  if (at < 0) throw new Error('not a P-256 certificate');
  der[at + 3] = 0x05;
  const body =
    der
      .toString('base64')
      .match(/.{1,64}/g)
      ?.join('\n') ?? '';
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}
