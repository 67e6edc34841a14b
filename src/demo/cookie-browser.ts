// A minimal cookie-keeping HTTP "browser" for the sign-in flow without a real browser: it follows
// nothing by itself, so each redirect is a visible hop. The demo walkthrough drives the demo's
// sign-in with it; the tests drive the authorization code flow with it.

export interface Hop {
  status: number;
  /** The Location header resolved against the request URL, or null. */
  location: string | null;
  body: string;
  headers: Headers;
}

export function createCookieBrowser() {
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
