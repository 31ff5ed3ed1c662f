// callMetadata: a chain's metadata is built once per chain array and cloned per call; a changed array is built anew.
import { Metadata } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { callMetadata } from '../../services/core/rpc/client.js';

const links = (md: Metadata): unknown[] => md.get('fedlab-credential');

describe('callMetadata', () => {
  it('carries the chain, root first, in a new object every call', () => {
    const chain = ['a.b.c', 'd.e.f'];
    const one = callMetadata({ chain });
    const two = callMetadata({ chain });
    expect(links(one)).toEqual(['a.b.c', 'd.e.f']);
    expect(two).not.toBe(one);
    // What one call's metadata gets does not reach the next call's.
    one.add('x-extra', '1');
    one.remove('fedlab-credential');
    expect(links(callMetadata({ chain }))).toEqual(['a.b.c', 'd.e.f']);
    expect(callMetadata({ chain }).get('x-extra')).toEqual([]);
  });

  it('follows a chain array changed in place after it was sent', () => {
    const chain = ['a.b.c', 'd.e.f'];
    callMetadata({ chain });
    chain[1] = 'g.h.i';
    expect(links(callMetadata({ chain }))).toEqual(['a.b.c', 'g.h.i']);
    chain.push('j.k.l');
    expect(links(callMetadata({ chain }))).toEqual(['a.b.c', 'g.h.i', 'j.k.l']);
  });

  it('adds the chain after extra metadata, and gives empty metadata for no chain', () => {
    const extra = new Metadata();
    extra.set('x-request', 'r1');
    const md = callMetadata({ chain: ['a.b.c'], metadata: extra });
    expect(md.get('x-request')).toEqual(['r1']);
    expect(links(md)).toEqual(['a.b.c']);
    expect(links(extra)).toEqual([]);
    expect(callMetadata({}).toJSON()).toEqual({});
    expect(callMetadata({ chain: [] }).toJSON()).toEqual({});
  });

  it('refuses a link that is not a legal header value, as before', () => {
    expect(() => callMetadata({ chain: ['bad\nlink'] })).toThrow();
  });
});
