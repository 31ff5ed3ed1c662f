/**
 * Typed builders of the four roles' configs. Their input types are the roles' own schemas'
 * (`z.input<typeof ...ConfigSchema>`), so a misspelt key or a wrong value is a type error, and each
 * config is checked against its schema when it is built (see service-config.ts).
 */
import type { z } from 'zod';
import { maConfigSchema, MA_PATH_FIELDS } from '../../services/management-authority/config.js';
import { nmConfigSchema, NM_PATH_FIELDS } from '../../services/node-manager/config.js';
import { spConfigSchema, SP_PATH_FIELDS } from '../../services/service-provider/config.js';
import { saConfigSchema, SA_PATH_FIELDS } from '../../services/slice-authority/config.js';
import { buildServiceConfig, type ServiceConfig } from './service-config.js';

/** A management authority's config as written (every field with a default may be left out); `role` is set by {@link maConfig}. */
export type MaConfigInput = Omit<z.input<typeof maConfigSchema>, 'role'>;
/** A node manager's config as written; `role` is set by {@link nmConfig}. */
export type NmConfigInput = Omit<z.input<typeof nmConfigSchema>, 'role'>;
/** A slice authority's config as written; `role` is set by {@link saConfig}. */
export type SaConfigInput = Omit<z.input<typeof saConfigSchema>, 'role'>;
/** A service provider's config as written; `role` is set by {@link spConfig}. */
export type SpConfigInput = Omit<z.input<typeof spConfigSchema>, 'role'>;

/** A service's log level, as every config takes it. */
export type LogLevel = NonNullable<MaConfigInput['log_level']>;
/** One `sites` entry of a slice authority's config. */
export type SaSiteInput = SaConfigInput['sites'] extends (infer T)[] | undefined ? T : never;

/** A management authority's config, checked. */
export function maConfig(content: MaConfigInput): ServiceConfig<typeof maConfigSchema> {
  return buildServiceConfig({ role: 'ma', schema: maConfigSchema, pathFields: MA_PATH_FIELDS }, { role: 'ma', ...content });
}

/** A node manager's config, checked. */
export function nmConfig(content: NmConfigInput): ServiceConfig<typeof nmConfigSchema> {
  return buildServiceConfig({ role: 'nm', schema: nmConfigSchema, pathFields: NM_PATH_FIELDS }, { role: 'nm', ...content });
}

/** A slice authority's config, checked. */
export function saConfig(content: SaConfigInput): ServiceConfig<typeof saConfigSchema> {
  return buildServiceConfig({ role: 'sa', schema: saConfigSchema, pathFields: SA_PATH_FIELDS }, { role: 'sa', ...content });
}

/** A service provider's config, checked. */
export function spConfig(content: SpConfigInput): ServiceConfig<typeof spConfigSchema> {
  return buildServiceConfig({ role: 'sp', schema: spConfigSchema, pathFields: SP_PATH_FIELDS }, { role: 'sp', ...content });
}
