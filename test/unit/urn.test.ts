import { describe, expect, it } from 'vitest';
import {
  formatTarget,
  isUrn,
  makeUrn,
  parseTarget,
  parseUrn,
  targetContains,
  targetCovers,
  urnEquals,
} from '../../services/core/identity/urn.js';
import { InvalidArgumentError } from '../../services/core/errors.js';

describe('URNs', () => {
  it('parses valid URNs into components', () => {
    expect(parseUrn('urn:fedlab:plc.test:node:n1')).toEqual({ domain: 'plc.test', kind: 'node', name: 'n1' });
    expect(parseUrn('urn:fedlab:a-b.c0:sliver:x.y_z-1')).toEqual({ domain: 'a-b.c0', kind: 'sliver', name: 'x.y_z-1' });
    expect(makeUrn('plc.test', 'sp', 'acme')).toBe('urn:fedlab:plc.test:sp:acme');
  });

  it.each([
    ['', /must start with "urn:fedlab:"/],
    ['urn:other:plc.test:node:n1', /must start with/],
    ['urn:fedlab:plc.test:node', /exactly three parts/],
    ['urn:fedlab:plc.test:node:n1:extra', /exactly three parts/],
    ['urn:fedlab:PLC.test:node:n1', /not a lower-case DNS name/],
    ['urn:fedlab:-plc.test:node:n1', /not a lower-case DNS name/],
    ['urn:fedlab:plc..test:node:n1', /not a lower-case DNS name/],
    ['urn:fedlab:plc.test:robot:n1', /kind "robot" is not one of/],
    ['urn:fedlab:plc.test:node:N1', /name "N1" must match/],
    ['urn:fedlab:plc.test:node:.hidden', /must match/],
    ['urn:fedlab:plc.test:node:a/b', /must match/],
    ['urn:fedlab:plc.test:node:a;rm', /must match/],
    ['urn:fedlab:plc.test:node:' + 'a'.repeat(64), /must match/],
    ['urn:fedlab:plc.test:node:*', /must match/],
  ])('rejects %j with a clear message', (input, message) => {
    expect(() => parseUrn(input)).toThrow(InvalidArgumentError);
    expect(() => parseUrn(input)).toThrow(message);
    expect(isUrn(input)).toBe(false);
  });

  it('bounds how much of a bad input it echoes', () => {
    try {
      parseUrn(`urn:fedlab:${'x'.repeat(10_000)}`);
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message.length).toBeLessThan(400);
    }
  });

  it('compares by components, never by prefix', () => {
    expect(urnEquals('urn:fedlab:plc.test:node:n1', 'urn:fedlab:plc.test:node:n1')).toBe(true);
    expect(urnEquals('urn:fedlab:plc.prince:node:n1', 'urn:fedlab:plc.princeton:node:n1')).toBe(false);
    expect(urnEquals('urn:fedlab:plc.test:node:n1', 'urn:fedlab:plc.test:node:n10')).toBe(false);
  });
});

describe('target patterns', () => {
  it('parses the three forms', () => {
    expect(parseTarget('urn:fedlab:plc.test:*')).toEqual({ domain: 'plc.test', kind: '*', name: '*' });
    expect(parseTarget('urn:fedlab:plc.test:node:*')).toEqual({ domain: 'plc.test', kind: 'node', name: '*' });
    expect(parseTarget('urn:fedlab:plc.test:node:n1')).toEqual({ domain: 'plc.test', kind: 'node', name: 'n1' });
    expect(formatTarget(parseTarget('urn:fedlab:plc.test:*'))).toBe('urn:fedlab:plc.test:*');
    expect(() => parseTarget('urn:fedlab:*')).toThrow(InvalidArgumentError);
    expect(() => parseTarget('urn:fedlab:plc.test:*:n1')).toThrow(InvalidArgumentError);
    expect(() => parseTarget('urn:fedlab:plc.test:robot:*')).toThrow(/kind/);
  });

  it('covers objects by components', () => {
    expect(targetCovers('urn:fedlab:plc.test:*', 'urn:fedlab:plc.test:slice:s1')).toBe(true);
    expect(targetCovers('urn:fedlab:plc.test:node:*', 'urn:fedlab:plc.test:node:n1')).toBe(true);
    expect(targetCovers('urn:fedlab:plc.test:node:*', 'urn:fedlab:plc.test:slice:n1')).toBe(false);
    expect(targetCovers('urn:fedlab:plc.prince:*', 'urn:fedlab:plc.princeton:node:n1')).toBe(false);
    expect(targetCovers('urn:fedlab:plc.test:node:n1', 'urn:fedlab:plc.test:node:n10')).toBe(false);
  });

  it('contains narrower patterns only', () => {
    expect(targetContains('urn:fedlab:plc.test:*', 'urn:fedlab:plc.test:node:*')).toBe(true);
    expect(targetContains('urn:fedlab:plc.test:node:*', 'urn:fedlab:plc.test:node:n1')).toBe(true);
    expect(targetContains('urn:fedlab:plc.test:node:n1', 'urn:fedlab:plc.test:node:*')).toBe(false);
    expect(targetContains('urn:fedlab:plc.test:node:*', 'urn:fedlab:plc.test:*')).toBe(false);
    expect(targetContains('urn:fedlab:plc.test:node:*', 'urn:fedlab:plc.test:slice:*')).toBe(false);
    expect(targetContains('urn:fedlab:plc.prince:*', 'urn:fedlab:plc.princeton:*')).toBe(false);
  });
});
