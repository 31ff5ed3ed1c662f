// The system's Chromium (Debian's `chromium` package), for tests that drive a real browser through
// playwright-core. No browser is ever downloaded: a machine without the package skips those tests, saying why.
import { accessSync, constants } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/lib/chromium/chromium', '/usr/bin/chromium-browser'];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The Chromium binary to drive (`FEDLAB_CHROMIUM` chooses another), or undefined when there is none. */
export const chromiumPath: string | undefined = [process.env.FEDLAB_CHROMIUM, ...CANDIDATES].find(
  (p): p is string => typeof p === 'string' && p !== '' && executable(p),
);

/** Why browser tests skip here ('' when they run). */
export const noChromiumReason = chromiumPath
  ? ''
  : `no Chromium at ${CANDIDATES.join(', ')} (install Debian's package: apt-get install chromium; or set FEDLAB_CHROMIUM)`;

/** Starts the system Chromium headless (playwright-core runs it without its sandbox when root, as root must). */
export function launchChromium(): Promise<Browser> {
  if (!chromiumPath) throw new Error(noChromiumReason);
  return chromium.launch({ executablePath: chromiumPath, headless: true, timeout: 60_000 });
}
