// HTTPS requests to a service's dashboard, as a browser or a script would make them: with or without a
// client certificate, with a session cookie, and the one-time-link login (GET the link, POST its token).
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { until } from '../../services/core/timing.js';

/** An answer of the dashboard. */
export interface DashboardAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** Who asks: a client certificate (PEM), a session cookie, the CA that checks the server. */
export interface DashboardAsker {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly cookie?: string;
}

/** One request; `form` makes it a POST of an urlencoded form. */
export function dashboardRequest(
  url: string,
  who: DashboardAsker = {},
  options: { form?: Record<string, string>; headers?: Record<string, string> } = {},
): Promise<DashboardAnswer> {
  const body = options.form ? new URLSearchParams(options.form).toString() : undefined;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: body !== undefined ? 'POST' : 'GET',
        ...(who.ca ? { ca: who.ca } : { rejectUnauthorized: false }),
        ...(who.cert ? { cert: who.cert, key: who.key } : {}),
        // The service's certificate names its URN, not a host name.
        checkServerIdentity: () => undefined,
        servername: '',
        headers: {
          ...(who.cookie ? { cookie: who.cookie } : {}),
          ...(body !== undefined
            ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) }
            : {}),
          ...options.headers,
        },
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 10 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The link a service wrote to its `dashboard.login_link_file` (waits until it is there). With `used`, waits for
 * a link other than that one: the service writes the next link after it answers the login that used the last.
 */
export async function readLoginLink(file: string, used?: string): Promise<string> {
  let link = '';
  await until(
    () => {
      try {
        link = readFileSync(file, 'utf8').trim();
      } catch {
        link = '';
      }
      return link.includes('/login?token=') && link !== used;
    },
    10_000,
    used ? `a new login link in ${file}, after the last was used` : `a login link in ${file}`,
  );
  return link;
}

/** Logs in with a one-time link as a browser would (GET shows a form, POST sends its token); the session cookie, or the refusal. */
export async function loginWithLink(link: string): Promise<{ readonly cookie?: string; readonly answer: DashboardAnswer }> {
  const token = new URL(link).searchParams.get('token') ?? '';
  const answer = await dashboardRequest(new URL('/login', link).toString(), {}, { form: { token } });
  const set = answer.headers['set-cookie'];
  const first = Array.isArray(set) ? set[0] : set;
  return { ...(first ? { cookie: first.split(';')[0] as string } : {}), answer };
}
