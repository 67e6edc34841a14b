// A "loopback internet" for federation tests. Gateway and peer configs keep their production
// URLs (https://login.microsoftonline.com, https://accounts.google.com, https://acme.okta.com);
// this module's fetch maps each routed public origin to the loopback server standing in for it
// and refuses everything else that is not loopback, so a test can never reach the network.
//
// A rewritten request carries `x-forwarded-proto` / `x-forwarded-host` with its public origin:
// peers run behind that "proxy" (oidc-provider with `proxy = true`), so the URLs they build and the
// Secure cookies they set are those of the public https origin.
//
// Redirects are followed here, not by undici: a Location pointing at a public origin must be
// rewritten again (and an unmapped one refused), which undici's own redirect loop would not do.

export interface LoopbackInternet {
  /** Maps a public origin (e.g. 'https://login.microsoftonline.com') to a loopback target ('http://127.0.0.1:PORT'). */
  route(origin: string, target: string): void;
  /** Forgets a route: the public origin is then refused like any other unmapped one. */
  unroute(origin: string): void;
  /**
   * fetch that rewrites routed origins (keeping path, query, method, headers and body); any other
   * non-loopback URL is refused with TypeError('network access refused: <origin>'). Loopback URLs
   * pass through unchanged.
   */
  fetch: typeof fetch;
  /** Rewrites a URL string the same way (for a test browser following redirects). */
  rewrite(url: string): string;
  /** The inverse: a loopback URL back to its public form, unchanged if unmapped. */
  unrewrite(url: string): string;
  /** Current routes, public origin → loopback target. */
  readonly routes: ReadonlyMap<string, string>;
}

const MAX_REDIRECTS = 20;

export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(hostname);
}

function originOf(value: string, what: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`${what} must be an absolute URL, got ${JSON.stringify(value)}`);
  }
  if (url.origin === 'null') throw new TypeError(`${what} must be an http(s) origin, got ${JSON.stringify(value)}`);
  return url.origin;
}

export function createLoopbackInternet(): LoopbackInternet {
  const routes = new Map<string, string>();

  function route(origin: string, target: string): void {
    const publicOrigin = originOf(origin, 'origin');
    const targetOrigin = originOf(target, 'target');
    if (!isLoopbackHost(new URL(targetOrigin).hostname)) throw new TypeError(`target must be a loopback URL, got ${target}`);
    routes.set(publicOrigin, targetOrigin);
  }

  function rewrite(url: string): string {
    const parsed = new URL(url);
    const target = routes.get(parsed.origin);
    return target ? `${target}${parsed.pathname}${parsed.search}${parsed.hash}` : url;
  }

  function unrewrite(url: string): string {
    const parsed = new URL(url);
    for (const [publicOrigin, target] of routes) {
      if (target === parsed.origin) return `${publicOrigin}${parsed.pathname}${parsed.search}${parsed.hash}`;
    }
    return url;
  }

  /** One hop, no redirects: the loopback response, or a refusal. */
  async function send(publicUrl: URL, method: string, headers: Headers, body: ArrayBuffer | undefined, signal: AbortSignal | null): Promise<Response> {
    const target = routes.get(publicUrl.origin);
    let url: string;
    const sent = new Headers(headers);
    if (target) {
      url = rewrite(publicUrl.href);
      sent.set('x-forwarded-proto', publicUrl.protocol.slice(0, -1));
      sent.set('x-forwarded-host', publicUrl.host);
    } else if (isLoopbackHost(publicUrl.hostname)) {
      url = publicUrl.href;
    } else {
      throw new TypeError(`network access refused: ${publicUrl.origin}`);
    }
    const response = await fetch(url, { method, headers: sent, body, redirect: 'manual', signal });
    // Callers see the URL they asked for, as they would on the real internet.
    Object.defineProperty(response, 'url', { value: publicUrl.href });
    return response;
  }

  async function loopbackFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    const request = new Request(input, init);
    let url = new URL(request.url);
    let method = request.method;
    const headers = new Headers(request.headers);
    let body = method === 'GET' || method === 'HEAD' ? undefined : await request.arrayBuffer();
    for (let hop = 0; ; hop += 1) {
      const response = await send(url, method, headers, body, request.signal);
      const location = response.headers.get('location');
      if (request.redirect === 'manual' || response.status < 300 || response.status > 399 || !location) return response;
      if (request.redirect === 'error') throw new TypeError(`redirect refused (redirect: 'error'): ${url.href} → ${location}`);
      if (hop >= MAX_REDIRECTS) throw new TypeError(`too many redirects, last: ${url.href}`);
      await response.body?.cancel();
      const next = new URL(unrewrite(new URL(location, url).href));
      // Fetch standard, HTTP-redirect fetch step 13: credentials do not follow a cross-origin redirect.
      if (next.origin !== url.origin) headers.delete('authorization');
      url = next;
      // Fetch standard, HTTP-redirect fetch step 12: 303 (and 301/302 after POST) become GET.
      if (response.status === 303 ? method !== 'HEAD' : (response.status === 301 || response.status === 302) && method === 'POST') {
        method = 'GET';
        body = undefined;
        headers.delete('content-type');
        headers.delete('content-length');
      }
    }
  }

  return {
    route,
    unroute: (origin) => { routes.delete(originOf(origin, 'origin')); },
    fetch: loopbackFetch as typeof fetch,
    rewrite,
    unrewrite,
    routes,
  };
}
