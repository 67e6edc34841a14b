// client_secret_basic, tolerant of how clients really encode it. RFC 6749 §2.3.1 says the client
// id and secret are form-urlencoded before base64; openid-client and others do this, many HTTP
// libraries (curl -u, requests' auth=) do not. oidc-provider always form-decodes, so a raw
// secret containing "+" or "%" would fail. This step accepts both: when the raw (undecoded)
// pair matches a registered client exactly, it re-encodes the header the way oidc-provider
// expects; otherwise the header passes through untouched and oidc-provider decides. It never
// grants anything by itself: oidc-provider still authenticates the (re-encoded) credentials.
import { createHash, timingSafeEqual } from 'node:crypto';

import type { RequestHandler } from 'express';

/** Constant-time comparison of two secrets (also for client authentication, src/authz/client-auth.ts). */
export function sameSecret(a: string, b: string): boolean {
  // Hash first so the comparison is constant-time whatever the lengths.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

function formDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value.replace(/\+/g, '%20'));
  } catch {
    return undefined;
  }
}

export function createBasicAuthNormalizer(secrets: ReadonlyMap<string, string>): RequestHandler {
  return (req, _res, next) => {
    const header = req.headers.authorization;
    if (!header || !/^basic /i.test(header)) return next();
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon === -1) return next();
    const rawId = decoded.slice(0, colon);
    const rawSecret = decoded.slice(colon + 1);
    // Without "%" or "+" form-decoding changes nothing: both encodings are the same bytes, and
    // oidc-provider decides (the common case on the token endpoint's hot path).
    if (!/[%+]/.test(decoded)) return next();

    const id = formDecode(rawId);
    const secret = formDecode(rawSecret);
    // Not valid form-encoding at all: the client sent raw values, so treat them as such (a wrong
    // secret then fails as invalid_client, not as a malformed header).
    const sentRaw = id === undefined || secret === undefined;
    const encodedMatch = !sentRaw && secrets.has(id) && sameSecret(secrets.get(id)!, secret);
    const expected = secrets.get(rawId);
    const rawMatch = !encodedMatch && expected !== undefined && sameSecret(expected, rawSecret);
    if (sentRaw || rawMatch) {
      const reencoded = `${encodeURIComponent(rawId)}:${encodeURIComponent(rawSecret)}`;
      req.headers.authorization = `Basic ${Buffer.from(reencoded).toString('base64')}`;
    }
    next();
  };
}
