// A minimal cookie-keeping HTTP "browser" for driving the authorization code flow headlessly:
// follows nothing by itself, so each redirect is visible to the test.
import { createHash, randomBytes } from 'node:crypto';

export interface Hop {
  status: number;
  location: string | null;
  body: string;
  headers: Headers;
}

export function createBrowser() {
  const jar = new Map<string, string>();

  async function request(url: string, init: RequestInit = {}): Promise<Hop> {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { accept: 'text/html', ...(cookie ? { cookie } : {}), ...(init.headers as Record<string, string> | undefined) },
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    const location = res.headers.get('location');
    return { status: res.status, location: location ? new URL(location, url).href : null, body: await res.text(), headers: res.headers };
  }

  return {
    jar,
    get: (url: string) => request(url),
    postForm: (url: string, form: Record<string, string>) =>
      request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form),
      }),
  };
}

export type Browser = ReturnType<typeof createBrowser>;

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export interface SignInResult {
  code: string;
  verifier: string;
  redirect: URL;
}

/**
 * Runs /auth → development login form → (consent) → redirect_uri with a code, through real HTTP.
 */
export async function signIn(
  issuer: string,
  options: { clientId: string; redirectUri: string; email: string; scope?: string; prompt?: string; resource?: string; groups?: string },
  browser: Browser = createBrowser(),
): Promise<SignInResult> {
  const { verifier, challenge } = pkcePair();
  const params = new URLSearchParams({
    client_id: options.clientId,
    response_type: 'code',
    redirect_uri: options.redirectUri,
    scope: options.scope ?? 'openid email profile',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('hex'),
    nonce: randomBytes(8).toString('hex'),
  });
  if (options.prompt) params.set('prompt', options.prompt);
  if (options.resource) params.set('resource', options.resource);

  let hop = await browser.get(`${issuer}/auth?${params}`);
  for (let i = 0; i < 10; i += 1) {
    if (!hop.location) throw new Error(`sign-in stopped at status ${hop.status}: ${hop.body.slice(0, 300)}`);
    if (hop.location.startsWith(options.redirectUri)) {
      const redirect = new URL(hop.location);
      const code = redirect.searchParams.get('code');
      if (!code) throw new Error(`no code in redirect: ${hop.location}`);
      return { code, verifier, redirect };
    }
    const next = await browser.get(hop.location);
    if (next.status === 200 && next.body.includes('name="email"')) {
      const action = /action="([^"]+)"/.exec(next.body)?.[1] ?? '';
      hop = await browser.postForm(new URL(action.replace(/&amp;/g, '&'), hop.location).href, { email: options.email, name: 'Test Person', ...(options.groups ? { groups: options.groups } : {}) });
    } else {
      hop = next;
    }
  }
  throw new Error('too many redirects during sign-in');
}
