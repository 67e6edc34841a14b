// Signed cookies of the gateway's own (the enterprise-session cookie, the federation browser
// binding). HMAC-SHA256 over name and value with the configured cookie keys: the first key signs,
// every key verifies, so keys rotate like signing keys. Read from a raw Cookie header so express
// routes and oidc-provider (Koa) hooks share one implementation.
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface CookieOptions {
  path: string;
  maxAge?: number;
  secure: boolean;
  sameSite?: 'Lax' | 'Strict' | 'None';
}

export interface CookieSigner {
  /** A Set-Cookie header value. */
  serialize(name: string, value: string, options: CookieOptions): string;
  /** A Set-Cookie header value that deletes the cookie. */
  clear(name: string, options: CookieOptions): string;
  /** The verified value of `name` in a Cookie header, or undefined. */
  read(cookieHeader: string | undefined, name: string): string | undefined;
}

export function createCookieSigner(keys: readonly string[]): CookieSigner {
  if (keys.length === 0) throw new TypeError('createCookieSigner: keys must not be empty');
  const mac = (key: string, name: string, value: string) =>
    createHmac('sha256', key).update(`${name}=${value}`).digest('base64url');

  const attributes = (o: CookieOptions) =>
    `; Path=${o.path}; HttpOnly; SameSite=${o.sameSite ?? 'Lax'}${o.secure ? '; Secure' : ''}`;

  return {
    serialize(name, value, options) {
      const signed = `${encodeURIComponent(value)}.${mac(keys[0]!, name, value)}`;
      return `${name}=${signed}${attributes(options)}${options.maxAge !== undefined ? `; Max-Age=${Math.floor(options.maxAge)}` : ''}`;
    },
    clear(name, options) {
      return `${name}=${attributes(options)}; Max-Age=0`;
    },
    read(header, name) {
      if (!header) return undefined;
      for (const part of header.split(';')) {
        const eq = part.indexOf('=');
        if (eq === -1 || part.slice(0, eq).trim() !== name) continue;
        const raw = part.slice(eq + 1).trim();
        const dot = raw.lastIndexOf('.');
        if (dot === -1) continue;
        let value: string;
        try {
          value = decodeURIComponent(raw.slice(0, dot));
        } catch {
          continue;
        }
        const given = Buffer.from(raw.slice(dot + 1));
        for (const key of keys) {
          const expected = Buffer.from(mac(key, name, value));
          if (expected.length === given.length && timingSafeEqual(expected, given)) return value;
        }
      }
      return undefined;
    },
  };
}
