// @peculiar/x509 needs the Reflect metadata polyfill loaded before it.
import 'reflect-metadata';

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The CLI keeps profiles under $XDG_CONFIG_HOME (fedlab up writes some): tests, and the CLI processes they
// start, use a directory of this worker's own instead of the user's config directory.
const configHome = mkdtempSync(join(tmpdir(), 'fedlab-test-config-'));
process.env.XDG_CONFIG_HOME = configHome;
process.once('exit', () => rmSync(configHome, { recursive: true, force: true }));
