/**
 * The one place that wires @peculiar/x509 to Node's WebCrypto and converts
 * node:crypto key objects into the CryptoKeys it signs with. Every module in
 * certs/ that builds certificates imports x509 through here, so the Reflect
 * polyfill and the crypto provider are always set up first.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import { algForKey, type KeyAlgName } from '../services/core/identity/keys.js';

// Node's webcrypto is the WebCrypto the library expects (its DOM type names do not exist without lib "dom").
x509.cryptoProvider.set(webcrypto);

export { x509 };

/** The `--alg` name of a P-256 or Ed25519 key. */
export function algNameForKey(key: KeyObject): KeyAlgName {
  return algForKey(key) === 'ES256' ? 'p256' : 'ed25519';
}

function importParams(alg: KeyAlgName): webcrypto.EcKeyImportParams | webcrypto.Algorithm {
  return alg === 'p256' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'Ed25519' };
}

/** The certificate signature algorithm a key of `alg` signs with: ECDSA with SHA-256, or pure Ed25519. */
export function signingAlgorithm(alg: KeyAlgName): webcrypto.Algorithm | webcrypto.EcdsaParams {
  return alg === 'p256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' };
}

/**
 * Converts a node:crypto private key into a WebCrypto key pair. Node 20 has no
 * `KeyObject.toCryptoKey`, so the key goes through its PKCS#8 and SPKI DER
 * encodings; the private CryptoKey is not extractable.
 */
export async function toCryptoKeyPair(privateKey: KeyObject): Promise<webcrypto.CryptoKeyPair> {
  const alg = algNameForKey(privateKey);
  const subtle = webcrypto.subtle;
  const priv = await subtle.importKey('pkcs8', privateKey.export({ format: 'der', type: 'pkcs8' }), importParams(alg), false, ['sign']);
  const pub = await subtle.importKey('spki', createPublicKey(privateKey).export({ format: 'der', type: 'spki' }), importParams(alg), true, [
    'verify',
  ]);
  return { privateKey: priv, publicKey: pub };
}

/** Converts a node:crypto public key into a WebCrypto public key (for subject public keys of issued certificates). */
export async function toCryptoPublicKey(publicKey: KeyObject): Promise<webcrypto.CryptoKey> {
  const alg = algNameForKey(publicKey);
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return webcrypto.subtle.importKey('spki', der, importParams(alg), true, ['verify']);
}
