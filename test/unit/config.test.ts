import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { commonConfigSchema, compileConfig } from '../../services/core/config.js';
import { InvalidArgumentError } from '../../services/core/errors.js';

const base = {
  role: 'ma',
  urn: 'urn:fedlab:plc.test:authority:ma',
  listen: { host: '127.0.0.1', port: 7001 },
  tls: { ca: 'pki/ca.pem', cert: 'pki/cert.pem', key: 'pki/key.pem' },
  trust_bundle: 'pki/bundle.json',
  data_dir: 'data',
};

describe('compileConfig', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (value: unknown): string => {
    const file = join(dir, 'ma.json');
    writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
    return file;
  };

  it('compiles a file, resolves relative paths against it, fills defaults and freezes the result', () => {
    const config = compileConfig(commonConfigSchema, { file: write(base), env: {} });
    expect(config.tls.ca).toBe(join(dir, 'pki/ca.pem'));
    expect(config.data_dir).toBe(join(dir, 'data'));
    expect(config.log_level).toBe('info');
    expect(config.shutdown_grace_ms).toBe(10_000);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.listen)).toBe(true);
  });

  it('lets the environment override the file, and flags override both', () => {
    const file = write(base);
    const env = { FEDLAB_PORT: '7100', FEDLAB_LOG_LEVEL: 'warn', FEDLAB_DATA_DIR: '/var/lib/fedlab' };
    const fromEnv = compileConfig(commonConfigSchema, { file, env });
    expect(fromEnv.listen.port).toBe(7100);
    expect(fromEnv.log_level).toBe('warn');
    expect(fromEnv.data_dir).toBe('/var/lib/fedlab');
    const fromFlags = compileConfig(commonConfigSchema, { file, env, flags: { 'listen.port': 0 } });
    expect(fromFlags.listen.port).toBe(0);
  });

  it.each([
    [{ ...base, colour: 'blue' }, /unknown key "colour"/],
    [{ ...base, listen: { ...base.listen, prot: 1 } }, /unknown key "prot" in listen/],
    [{ ...base, listen: { port: 70000 } }, /listen\.port/],
    [{ ...base, urn: 'urn:fedlab:PLC:authority:ma' }, /urn: must be a URN/],
    [{ ...base, role: 'boss' }, /role/],
    [{ ...base, log_level: 'loud' }, /log_level/],
    [{ ...base, tls: { ca: 'x', cert: 'y' } }, /tls\.key/],
  ])('stops on a bad config, naming the field (%#)', (value, message) => {
    const file = write(value);
    expect(() => compileConfig(commonConfigSchema, { file, env: {} })).toThrow(InvalidArgumentError);
    expect(() => compileConfig(commonConfigSchema, { file, env: {} })).toThrow(message);
  });

  it('names a bad environment value', () => {
    expect(() => compileConfig(commonConfigSchema, { file: write(base), env: { FEDLAB_PORT: 'seventy' } })).toThrow(/listen\.port/);
  });

  it('explains a missing or non-JSON file', () => {
    expect(() => compileConfig(commonConfigSchema, { file: join(dir, 'nope.json'), env: {} })).toThrow(/cannot read config file .*ENOENT/);
    expect(() => compileConfig(commonConfigSchema, { file: write('{ not json'), env: {} })).toThrow(/not a JSON object/);
    expect(() => compileConfig(commonConfigSchema, { file: write('[1,2]'), env: {} })).toThrow(/not a JSON object/);
  });
});
