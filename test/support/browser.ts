// A minimal cookie-keeping HTTP "browser" for driving the authorization code flow headlessly:
// follows nothing by itself, so each redirect is visible to the test.
import { createHash, randomBytes } from 'node:crypto';

import { createCookieBrowser } from '../../src/demo/cookie-browser.ts';

// The same cookie-keeping client the demo walkthrough uses (src/demo/cookie-browser.ts).
export { createCookieBrowser as createBrowser };
export type { Hop } from '../../src/demo/cookie-browser.ts';

export type Browser = ReturnType<typeof createCookieBrowser>;

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
  browser: Browser = createCookieBrowser(),
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
