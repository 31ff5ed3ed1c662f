/**
 * A service config built in code (by `fedlab up`, the test harnesses and the benchmarks): the JSON a
 * `fedlab serve <role>` process reads, checked against the role's own schema when it is built, so a
 * mistake fails where the config is written rather than when a child process starts and exits.
 */
import { writeFileSync } from 'node:fs';
import type { z } from 'zod';
import { compileConfig, type CommonConfig, type Role } from '../../services/core/config.js';
import { InvalidArgumentError } from '../../services/core/errors.js';

/** A role's config schema and the path fields `fedlab serve` resolves against the config file's folder. */
export interface RoleConfigSpec<S extends z.ZodType<CommonConfig>> {
  readonly role: Role;
  readonly schema: S;
  readonly pathFields: readonly string[];
}

/** A checked config of one role, ready to be written where a service reads it. */
export class ServiceConfig<S extends z.ZodType<CommonConfig>> {
  /** Use {@link buildServiceConfig}: it checks the content first. */
  constructor(
    private readonly spec: RoleConfigSpec<S>,
    /** The config as written to the file (defaults left to the service). */
    readonly content: Readonly<z.input<S>>,
  ) {}

  /** The role this config is for. */
  get role(): Role {
    return this.spec.role;
  }

  /** Writes the config as JSON to `file`, what `fedlab serve <role> --config FILE` reads; returns `file`. */
  writeTo(file: string): string {
    writeFileSync(file, `${JSON.stringify(this.content, null, 2)}\n`);
    return file;
  }

  /**
   * Writes the config to `file` and compiles it from there as `fedlab serve` would (relative paths
   * resolve against the file's folder, defaults applied, frozen): for a service hosted in this process.
   */
  writeAndCompile(file: string): Readonly<z.infer<S>> {
    this.writeTo(file);
    return compileConfig(this.spec.schema, { file }, this.spec.pathFields);
  }
}

/** Checks `content` against the role's schema and returns it as a {@link ServiceConfig}; a bad field throws, naming it. */
export function buildServiceConfig<S extends z.ZodType<CommonConfig>>(spec: RoleConfigSpec<S>, content: z.input<S>): ServiceConfig<S> {
  const checked = spec.schema.safeParse(content);
  if (!checked.success) {
    const problems = checked.error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(top level)'}: ${issue.message}`);
    throw new InvalidArgumentError(`invalid ${spec.role} config: ${problems.join('; ')}`, {
      field: checked.error.issues[0]?.path.join('.') ?? '',
    });
  }
  return new ServiceConfig(spec, content);
}
