/**
 * The CA that certifies enrolling nodes: the site CA directory itself, or an
 * intermediate CA the site gave the management authority (its certificate and
 * key, plus the certificates above it). Also finds an owner's certified key
 * among what the site CA issued, so that an owner → MA credential can be
 * checked even when an administrator (not the owner) made the token.
 */
import 'reflect-metadata';
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { checkDnsNames, loadCa, readCaState, signLeafCertificate, type CaMaterial } from '../../certs/index.js';
import { thumbprintOf, toPublicJwk, type PublicJwk } from '../core/credentials/index.js';
import { FailedPreconditionError, InvalidArgumentError } from '../core/errors.js';
import { parseCertificate, splitPemCertificates } from '../core/identity/certificate.js';
import { algForKey, parsePrivateKeyPem } from '../core/identity/keys.js';
import type { SiteCaSettings } from './config.js';

/** A CA able to sign node certificates. */
export class SiteCa {
  private constructor(
    private readonly material: CaMaterial,
    /** The CA certificates a node must trust, issuer first. */
    readonly chainPem: readonly string[],
    /** The CA directory, when the MA was given the site CA itself (owners' keys can then be looked up). */
    private readonly caDir: string | undefined,
    private readonly certDays: number,
  ) {}

  /** Loads the CA the settings name, or undefined when it names none (enrolment is then refused). */
  static async load(from: SiteCaSettings, domain: string): Promise<SiteCa | undefined> {
    if (from.caDir) {
      const ca = await loadCa(from.caDir);
      if (ca.domain !== domain)
        throw new InvalidArgumentError(`enrolment.ca_dir is the CA of ${ca.domain}, not of this site's domain ${domain}`);
      return new SiteCa(ca, [ca.certPem], ca.dir, from.certDays);
    }
    if (from.caCert && from.caKey) {
      const certPem = await readFile(from.caCert, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new InvalidArgumentError(`enrolment.ca_cert: cannot read ${from.caCert}: ${err.code ?? err.message}`);
      });
      const keyPem = await readFile(from.caKey, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new InvalidArgumentError(`enrolment.ca_key: cannot read ${from.caKey}: ${err.code ?? err.message}`);
      });
      const cert = parseCertificate(certPem, 'enrolment.ca_cert');
      if (!cert.ca) throw new InvalidArgumentError('enrolment.ca_cert is not a CA certificate (basicConstraints CA:TRUE)');
      const privateKey = parsePrivateKeyPem(keyPem, 'enrolment.ca_key');
      if (!createPublicKey(privateKey).equals(cert.publicKey))
        throw new InvalidArgumentError('enrolment.ca_key is not the key of enrolment.ca_cert');
      const above = from.caChain ? splitPemCertificates(await readFile(from.caChain, 'utf8')) : [];
      const alg = algForKey(privateKey) === 'ES256' ? 'p256' : 'ed25519';
      return new SiteCa(
        { domain, alg, certPem: `${certPem.trim()}\n`, cert, privateKey },
        [`${certPem.trim()}\n`, ...above],
        undefined,
        from.certDays,
      );
    }
    return undefined;
  }

  /**
   * Signs a node certificate naming `urn`, for `publicKey`, with the endpoint's
   * host as a DNS or IP subjectAltName so that clients may also check it by name.
   */
  async signNode(urn: string, publicKey: KeyObject, endpointHost: string | undefined): Promise<string> {
    const dns: string[] = [];
    const ip: string[] = [];
    if (endpointHost) {
      if (isIP(endpointHost)) ip.push(endpointHost);
      else {
        try {
          dns.push(...checkDnsNames([endpointHost]));
        } catch {
          // A host that is no DNS name is still usable through URN pinning; it just does not go into the certificate.
        }
      }
    }
    const leaf = await signLeafCertificate(this.material, { urn, publicKey, dns, ip, days: this.certDays });
    return leaf.certPem;
  }

  /**
   * The public key the site CA certified for `urn` with thumbprint `kid`, if it
   * issued one that is still valid (only when the MA holds the CA directory).
   */
  async certifiedKey(urn: string, kid: string, now: Date): Promise<PublicJwk | undefined> {
    if (!this.caDir) return undefined;
    const state = await readCaState(this.caDir);
    for (const rec of state.issued) {
      if (rec.urn !== urn || rec.kid !== kid) continue;
      const cert = new X509Certificate(await readFile(join(this.caDir, rec.file)));
      if (!cert.verify(this.material.cert.publicKey)) continue;
      if (now.getTime() < Date.parse(cert.validFrom) || now.getTime() > Date.parse(cert.validTo)) continue;
      const jwk = toPublicJwk(cert.publicKey);
      if (thumbprintOf(jwk) === kid) return jwk;
    }
    return undefined;
  }
}

/** The public key of an EnrollNode request: a PEM SubjectPublicKeyInfo, or a CSR whose signature verifies. */
export async function enrolmentKey(publicKeyPem: string, csrPem: string): Promise<KeyObject> {
  const hasKey = typeof publicKeyPem === 'string' && publicKeyPem.trim() !== '';
  const hasCsr = typeof csrPem === 'string' && csrPem.trim() !== '';
  if (hasKey === hasCsr) throw new InvalidArgumentError('give exactly one of public_key_pem and csr_pem', { field: 'public_key_pem' });
  let key: KeyObject;
  if (hasKey) {
    if (publicKeyPem.length > 8192)
      throw new InvalidArgumentError('public_key_pem is too long for a public key', { field: 'public_key_pem' });
    if (/PRIVATE KEY/.test(publicKeyPem))
      throw new InvalidArgumentError('public_key_pem holds a private key; send only the public key', { field: 'public_key_pem' });
    try {
      key = createPublicKey(publicKeyPem);
    } catch {
      throw new InvalidArgumentError('public_key_pem is not a PEM SubjectPublicKeyInfo', { field: 'public_key_pem' });
    }
  } else {
    if (csrPem.length > 16_384) throw new InvalidArgumentError('csr_pem is too long', { field: 'csr_pem' });
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch {
      throw new InvalidArgumentError('csr_pem is not a PEM PKCS#10 certificate signing request', { field: 'csr_pem' });
    }
    if (!(await csr.verify()))
      throw new InvalidArgumentError("csr_pem's signature does not verify: sign the request with the node's key", { field: 'csr_pem' });
    key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  }
  try {
    algForKey(key);
  } catch (err) {
    throw new InvalidArgumentError(`the node's key: ${(err as Error).message}`, { field: hasKey ? 'public_key_pem' : 'csr_pem' });
  }
  return key;
}

/** Thrown when enrolment is attempted on an MA without a CA. */
export function noCaError(): FailedPreconditionError {
  return new FailedPreconditionError(
    'this management authority has no CA to certify nodes; set enrolment.ca_dir (or enrolment.ca_cert and enrolment.ca_key) in its config',
  );
}
