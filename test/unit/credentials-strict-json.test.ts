// The length bound that lets compact JSON skip the repeated-key scan: it is never above the length of
// any text of the value (numbers in exponent form, escapes, white space included), so a text with a
// repeated key can never pass it; and compact text without repeats always does.
import { describe, expect, it } from 'vitest';
import { minimalJsonLength, parseStrictJsonObject } from '../../services/core/credentials/strict-json.js';

const claims = {
  v: 1,
  jti: 'AAAAAAAAAAAAAAAAAAAAAA',
  iss: 'urn:fedlab:plc.test:authority:ma',
  sub: 'urn:fedlab:plc.test:authority:sa',
  cnf: { jwk: { kty: 'OKP', crv: 'Ed25519', x: 'x'.repeat(43) } },
  tgt: ['urn:fedlab:plc.test:node:*'],
  priv: ['node.read', 'sliver.exec'],
  dlg: 3,
  lim: { slivers: 1000, cpu_millis: 4000, mem_mb: 8192, disk_mb: 20480, ttl_s: 4838400 },
  iat: 1_780_000_000,
  nbf: 1_780_000_000,
  exp: 1_781_000_000,
};

/** Every spelling of the number `n` this test knows: decimal, exponent forms, a fraction, upper-case E. */
function spellings(n: number): string[] {
  const out = [String(n), `${n}.0`, `${n}e0`, `${n}E+0`];
  for (let k = 1; k <= 15 && n % 10 ** k === 0; k++) out.push(`${n / 10 ** k}e${k}`, `${n / 10 ** k}E${k}`);
  return out;
}

describe('the minimal JSON length', () => {
  it('is exact for compact text and never above the length of another spelling', () => {
    const text = JSON.stringify(claims);
    expect(minimalJsonLength(JSON.parse(text))).toBeLessThanOrEqual(text.length);
    for (const n of [0, 7, 10, 100, 1000, 4000, 20480, 1_780_000_000, 1e15, Number.MAX_SAFE_INTEGER]) {
      for (const s of spellings(n)) {
        expect(JSON.parse(s)).toBe(n);
        expect(minimalJsonLength(n), s).toBeLessThanOrEqual(s.length);
      }
    }
    expect(minimalJsonLength('a"b\\c')).toBeLessThanOrEqual(JSON.stringify('a"b\\c').length);
    expect(minimalJsonLength(JSON.parse('"\\u0061"'))).toBeLessThanOrEqual(8);
    expect(minimalJsonLength([true, false, null, {}, []])).toBe('[true,false,null,{},[]]'.length);
    for (const other of [-1, 1.5, 2 ** 60, Infinity]) expect(minimalJsonLength(other)).toBe(-1);
  });

  it('a repeated key is found however the other numbers are shortened to hide it', () => {
    const text = JSON.stringify(claims);
    // Every number in its shortest exponent form saves what it can; a repeat still does not pass.
    const squeezed = text
      .replace('"slivers":1000', '"slivers":1e3')
      .replace('"cpu_millis":4000', '"cpu_millis":4e3')
      .replace(/:1780000000/g, ':178e7')
      .replace(':1781000000', ':1781e6');
    expect(parseStrictJsonObject(Buffer.from(squeezed))).toMatchObject({ ok: true });
    for (const repeat of ['"dlg":0,', '"":0,"":1,', '"v":1,', '"priv":["slice.read"],']) {
      const text2 = squeezed.replace('"dlg":3', `${repeat}"dlg":3`);
      expect(parseStrictJsonObject(Buffer.from(text2)), repeat).toMatchObject({ ok: false, problem: 'duplicate-key' });
    }
    const nested = squeezed.replace('"kty":"OKP"', '"kty":0,"kty":"OKP"');
    expect(parseStrictJsonObject(Buffer.from(nested))).toMatchObject({ ok: false, problem: 'duplicate-key' });
    expect(parseStrictJsonObject(Buffer.from('{"a":1,"a":1}'))).toMatchObject({ ok: false, problem: 'duplicate-key' });
    expect(parseStrictJsonObject(Buffer.from('{"lim":{"x":1000,"x":1e3}}'))).toMatchObject({ ok: false, problem: 'duplicate-key' });
  });

  it('text with white space or escapes falls back to the scan and is still read right', () => {
    expect(parseStrictJsonObject(Buffer.from('{ "a" : 1 , "b" : [ "x:y" ] }'))).toMatchObject({ ok: true });
    expect(parseStrictJsonObject(Buffer.from('{ "a" : 1 , "a" : 2 }'))).toMatchObject({ ok: false, problem: 'duplicate-key' });
    expect(parseStrictJsonObject(Buffer.from('{"a":"\\u0061","\\u0061":2}'))).toMatchObject({ ok: false, problem: 'duplicate-key' });
  });
});
