// A headless browser over the loopback internet (./internet.ts): a cookie jar (RFC 6265 host /
// domain / path matching, keyed by the PUBLIC host, the Secure flag ignored since every hop is
// plain http on loopback), manual redirects, and followUntil(), which walks a sign-in across the
// gateway and the IdP peers: it follows 30x, fills the peers' login forms, submits auto-post
// pages (form_post responses, logout confirmations) and stops at the first Location (or
// auto-post action) the predicate accepts.
import type { LoopbackInternet } from './internet.ts';

export { pkcePair } from '../browser.ts';

export interface Hop {
  method: string;
  /** The public URL requested. */
  url: string;
  status: number;
  /** Location resolved against `url`, in public form; null when none. */
  location: string | null;
  body: string;
  headers: Headers;
  /** The form fields sent, for POSTs. */
  form?: Record<string, string>;
}

export interface Cookie {
  name: string;
  value: string;
  /** Host (host-only cookie) or domain (Domain attribute) it belongs to. */
  domain: string;
  hostOnly: boolean;
  path: string;
  expires?: number;
  secure: boolean;
  httpOnly: boolean;
}

export interface HtmlForm {
  action: string;
  method: string;
  fields: Record<string, string>;
  /** Names of the visible (non-hidden) inputs. */
  inputs: string[];
}

export interface FollowOptions {
  /** Fills the peers' login forms (fields `username` and `password`) with these. */
  username?: string;
  password?: string;
  /**
   * Called for each non-auto-post HTML form page met (default: fills username/password when the
   * form has such fields). Return the values to submit (merged over the form's own fields), or
   * undefined to stop there.
   */
  onLoginForm?: (html: string, url: string, form: HtmlForm) => Record<string, string> | undefined;
  /** Default 30. */
  maxHops?: number;
  /** Default true: throw when the walk ends before the predicate matched; false returns `reached: false`. */
  throwOnStop?: boolean;
}

export interface FollowResult {
  reached: boolean;
  /** The Location (or auto-post action) the predicate accepted; undefined if not reached. */
  location?: string;
  /** Fields of the auto-post form whose action matched, if it was a form. */
  form?: Record<string, string>;
  hops: Hop[];
  last: Hop;
}

const AUTO_SUBMIT = /document\.forms\[0\]\.submit\(\)|onload="[^"]*submit\(\)/;

function decodeEntities(value: string): string {
  return value.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos|#39);/gi, (_m, entity: string) => {
    const lower = entity.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(Number.parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(Number.parseInt(lower.slice(1), 10));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[lower] ?? '';
  });
}

function attribute(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(tag);
  if (!match) return undefined;
  return decodeEntities(match[1] ?? match[2] ?? match[3] ?? '');
}

/** The forms of a page (regex-level parsing; enough for the peers', oidc-provider's and the gateway's pages). */
export function parseForms(html: string, baseUrl: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const tag = match[1] ?? '';
    const inner = match[2] ?? '';
    const fields: Record<string, string> = {};
    const inputs: string[] = [];
    for (const input of inner.matchAll(/<input\b[^>]*>/gi)) {
      const name = attribute(input[0], 'name');
      if (!name) continue;
      const type = (attribute(input[0], 'type') ?? 'text').toLowerCase();
      if (type === 'submit' || type === 'button') continue;
      fields[name] = attribute(input[0], 'value') ?? '';
      if (type !== 'hidden') inputs.push(name);
    }
    forms.push({
      action: new URL(attribute(` ${tag}`, 'action') ?? '', baseUrl).href,
      method: (attribute(` ${tag}`, 'method') ?? 'get').toUpperCase(),
      fields,
      inputs,
    });
  }
  return forms;
}

function domainMatches(host: string, cookie: Cookie): boolean {
  return cookie.hostOnly ? host === cookie.domain : host === cookie.domain || host.endsWith(`.${cookie.domain}`);
}

function pathMatches(path: string, cookiePath: string): boolean {
  if (path === cookiePath) return true;
  return path.startsWith(cookiePath) && (cookiePath.endsWith('/') || path[cookiePath.length] === '/');
}

function defaultPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash <= 0 ? '/' : path.slice(0, slash);
}

export function createPeerBrowser(internet: LoopbackInternet) {
  let cookies: Cookie[] = [];

  function store(url: URL, line: string): void {
    const [pair = '', ...attributes] = line.split(';');
    const eq = pair.indexOf('=');
    if (eq <= 0) return;
    const cookie: Cookie = {
      name: pair.slice(0, eq).trim(),
      value: pair.slice(eq + 1).trim(),
      domain: url.hostname,
      hostOnly: true,
      path: defaultPath(url.pathname),
      secure: false,
      httpOnly: false,
    };
    let maxAge: number | undefined;
    for (const attr of attributes) {
      const [rawName = '', ...rest] = attr.split('=');
      const name = rawName.trim().toLowerCase();
      const value = rest.join('=').trim();
      if (name === 'domain' && value) {
        cookie.domain = value.replace(/^\./, '').toLowerCase();
        cookie.hostOnly = false;
      } else if (name === 'path' && value.startsWith('/')) cookie.path = value;
      else if (name === 'expires') cookie.expires = Date.parse(value);
      else if (name === 'max-age') maxAge = Number(value);
      else if (name === 'secure') cookie.secure = true;
      else if (name === 'httponly') cookie.httpOnly = true;
    }
    if (maxAge !== undefined && Number.isFinite(maxAge)) cookie.expires = Date.now() + maxAge * 1000;
    cookies = cookies.filter((c) => !(c.name === cookie.name && c.domain === cookie.domain && c.path === cookie.path));
    if (cookie.expires === undefined || cookie.expires > Date.now()) cookies.push(cookie);
  }

  function cookiesFor(url: URL): Cookie[] {
    const now = Date.now();
    cookies = cookies.filter((c) => c.expires === undefined || c.expires > now);
    return cookies
      .filter((c) => domainMatches(url.hostname, c) && pathMatches(url.pathname, c.path))
      .sort((a, b) => b.path.length - a.path.length);
  }

  async function request(
    rawUrl: string,
    init: { method?: string; headers?: Record<string, string>; form?: Record<string, string> } = {},
  ): Promise<Hop> {
    const url = new URL(internet.unrewrite(rawUrl));
    const method = init.method ?? (init.form ? 'POST' : 'GET');
    const cookie = cookiesFor(url).map((c) => `${c.name}=${c.value}`).join('; ');
    const response = await internet.fetch(url.href, {
      method,
      redirect: 'manual',
      headers: {
        accept: 'text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8',
        ...(cookie ? { cookie } : {}),
        ...(init.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...init.headers,
      },
      ...(init.form ? { body: new URLSearchParams(init.form) } : {}),
    });
    for (const line of response.headers.getSetCookie()) store(url, line);
    const location = response.headers.get('location');
    return {
      method,
      url: url.href,
      status: response.status,
      location: location ? internet.unrewrite(new URL(location, url).href) : null,
      body: await response.text(),
      headers: response.headers,
      ...(init.form ? { form: init.form } : {}),
    };
  }

  const get = (url: string, headers?: Record<string, string>) => request(url, { ...(headers ? { headers } : {}) });
  const postForm = (url: string, form: Record<string, string>, headers?: Record<string, string>) =>
    request(url, { form, ...(headers ? { headers } : {}) });

  async function followUntil(
    start: string,
    predicate: (location: string, hop: Hop) => boolean,
    options: FollowOptions = {},
  ): Promise<FollowResult> {
    const hops: Hop[] = [];
    const maxHops = options.maxHops ?? 30;
    const onLoginForm = options.onLoginForm ?? ((_html: string, _url: string, form: HtmlForm) => {
      const values: Record<string, string> = {};
      if (form.inputs.includes('username') && options.username !== undefined) values.username = options.username;
      if (form.inputs.includes('password') && options.password !== undefined) values.password = options.password;
      return Object.keys(values).length > 0 ? values : undefined;
    });
    const stop = (last: Hop, why: string): FollowResult => {
      if (options.throwOnStop === false) return { reached: false, hops, last };
      const trail = hops.map((hop) => `  ${hop.method} ${hop.url} → ${hop.status}${hop.location ? ` ${hop.location}` : ''}`).join('\n');
      throw new Error(`followUntil stopped (${why}) at ${last.status} ${last.url}\n${trail}\n${last.body.slice(0, 500)}`);
    };

    let hop = await get(start);
    hops.push(hop);
    let lastFormUrl: string | undefined;
    while (hops.length < maxHops) {
      if (hop.location && hop.status >= 300 && hop.status < 400) {
        if (predicate(hop.location, hop)) return { reached: true, location: hop.location, hops, last: hop };
        // 307/308 repeat the request; every other redirect becomes a GET.
        hop = (hop.status === 307 || hop.status === 308) && hop.form
          ? await postForm(hop.location, hop.form)
          : await get(hop.location);
        hops.push(hop);
        continue;
      }
      const contentType = hop.headers.get('content-type') ?? '';
      const forms = contentType.includes('html') ? parseForms(hop.body, hop.url) : [];
      const form = forms.find((candidate) => candidate.method === 'POST');
      if (!form) return stop(hop, 'no redirect and no form');
      if (AUTO_SUBMIT.test(hop.body)) {
        if (predicate(form.action, hop)) return { reached: true, location: form.action, form: form.fields, hops, last: hop };
        hop = await postForm(form.action, form.fields);
        hops.push(hop);
        continue;
      }
      // The same form page again right after submitting it: the values were refused.
      if (lastFormUrl === hop.url && hop.method === 'POST') return stop(hop, 'form refused the submitted values');
      const values = onLoginForm(hop.body, hop.url, form);
      if (!values) return stop(hop, 'form left unfilled');
      lastFormUrl = form.action;
      hop = await postForm(form.action, { ...form.fields, ...values });
      hops.push(hop);
    }
    return stop(hop, `more than ${maxHops} hops`);
  }

  return {
    get,
    postForm,
    request,
    followUntil,
    /** Cookies the browser would send to `url`. */
    cookies: (url: string) => cookiesFor(new URL(internet.unrewrite(url))),
    /** Every stored cookie. */
    allCookies: () => [...cookies],
    /** Forgets the cookies of one host (or all), e.g. to simulate another browser at an IdP. */
    clearCookies(host?: string) {
      cookies = host ? cookies.filter((c) => !domainMatches(host, c)) : [];
    },
  };
}

export type PeerBrowser = ReturnType<typeof createPeerBrowser>;
