/**
 * What `fedlab backup` and `fedlab restore` read from a service's config: who it is (URN, role),
 * where it listens, its TLS files and its data directory. The config is compiled as `fedlab serve`
 * compiles it (FEDLAB_* variables and flags over the file, relative paths against its folder), but
 * only the settings every role has are checked: the role's own sections are left to the service.
 */
import { compileConfig, commonConfigSchema, type CommonConfig } from '../../../services/core/config.js';
import type { TlsMaterial } from '../../../services/core/rpc/server.js';
import { readFlagFile } from '../../cli-support.js';

/** A service's config as backup and restore use it. */
export type ServiceSettings = Readonly<CommonConfig>;

/** Compiles a service's config file (with `overrides` as dotted paths, like `fedlab serve`'s flags). */
export function readServiceConfig(file: string, overrides: Record<string, unknown> = {}): ServiceSettings {
  return compileConfig(commonConfigSchema.loose(), { file, env: process.env, flags: overrides });
}

/** host:port to dial the service on this machine: its listen address, a wildcard one as loopback. */
export function dialAddress(config: ServiceSettings): string {
  const host = config.listen.host;
  const local =
    host === '0.0.0.0'
      ? '127.0.0.1'
      : host === '::' || host === '[::]'
        ? '[::1]'
        : host.includes(':') && !host.startsWith('[')
          ? `[${host}]`
          : host;
  return `${local}:${config.listen.port}`;
}

/** The service's own TLS identity (its config's tls files): what it authenticates with, and whom it trusts. */
export function ownTls(config: ServiceSettings): TlsMaterial {
  return {
    caCerts: readFlagFile(config.tls.ca, 'tls.ca of the config'),
    cert: readFlagFile(config.tls.cert, 'tls.cert of the config'),
    key: readFlagFile(config.tls.key, 'tls.key of the config'),
  };
}
