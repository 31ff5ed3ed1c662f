// Keys made by generateKeyPair (services/core/identity/keys.ts), which avoids node:crypto's key generation jobs (on
// Node 20, the garbage collector destroying such a job while the key is being exported as a JWK hangs the process):
// both algorithms sign and verify, describe as the right JWS alg and JWK, and private and public keys match; a
// thousand P-256 keys are all different and all valid (a private scalar with a leading zero byte included); and
// the loop of generations and later JWK exports that hung node:crypto's keys runs to its end with these.
import { spawnSync } from 'node:child_process';
import { createPublicKey, sign, verify } from 'node:crypto';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { algForKey, describePublicKey, generateKeyPair } from '../../services/core/identity/keys.js';

describe('generateKeyPair', () => {
  it('makes P-256 and Ed25519 pairs that sign, verify and describe as they should', async () => {
    for (const [alg, jws, kty] of [
      ['p256', 'ES256', 'EC'],
      ['ed25519', 'EdDSA', 'OKP'],
    ] as const) {
      const { privateKey, publicKey } = generateKeyPair(alg);
      expect(privateKey.type).toBe('private');
      expect(algForKey(privateKey)).toBe(jws);
      const data = Buffer.from('fedlab');
      const sig = sign(alg === 'p256' ? 'sha256' : null, data, privateKey);
      expect(verify(alg === 'p256' ? 'sha256' : null, data, publicKey, sig)).toBe(true);
      // The public key is the private key's.
      expect(createPublicKey(privateKey).export({ format: 'der', type: 'spki' })).toEqual(
        publicKey.export({ format: 'der', type: 'spki' }),
      );
      const info = await describePublicKey(publicKey);
      expect(info.alg).toBe(jws);
      expect(info.jwk.kty).toBe(kty);
    }
    expect(() => generateKeyPair('rsa' as never)).toThrow(/unknown key algorithm "rsa": use p256 or ed25519/);
  });

  it('makes a thousand different valid P-256 keys', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1_000; i++) {
      const { privateKey, publicKey } = generateKeyPair('p256');
      const d = privateKey.export({ format: 'jwk' }).d as string;
      // 32 bytes always (a scalar with leading zero bytes is padded back, not shortened).
      expect(Buffer.from(d, 'base64url')).toHaveLength(32);
      seen.add(d);
      if (i % 100 === 0) {
        const sig = sign('sha256', Buffer.from([i]), privateKey);
        expect(verify('sha256', Buffer.from([i]), publicKey, sig)).toBe(true);
      }
    }
    expect(seen.size).toBe(1_000);
  });

  it("runs the loop that hung node:crypto's generated keys (generations, garbage, later JWK exports) to its end", () => {
    const keys = resolve('services/core/identity/keys.ts');
    // node:crypto's generateKeyPairSync in this loop hung 2 runs out of 3 within 15 s on Node 20.
    const script = `import { generateKeyPair } from ${JSON.stringify(keys)};
      const ring = []; let junk = []; const end = Date.now() + 4000; let n = 0;
      while (Date.now() < end) {
        ring.push(generateKeyPair(n % 2 ? 'p256' : 'ed25519'));
        if (ring.length > 2000) ring.shift();
        for (let i = 0; i < 2000; i++) junk.push({ a: i, b: 'x' + i, c: [i] });
        if (junk.length > 2000000) junk = [];
        for (let k = 0; k < 5; k++) ring[Math.floor(Math.random() * ring.length)].publicKey.export({ format: 'jwk' });
        n++;
      }
      console.log('done', n);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 40_000 });
    expect(r.signal, `the loop hung: ${r.stderr}`).toBeNull();
    expect(r.stdout).toMatch(/^done \d+/);
  }, 60_000);
});
