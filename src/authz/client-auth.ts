// Client authentication at the token endpoint (RFC 6749 §2.3, RFC 7523 §2.2) for the grants the
// gateway serves outside oidc-provider's pipeline (token-endpoint.ts). Same registrations (the
// static client metadata oidc-provider is configured with), same rules, same order and same
// errors as oidc-provider's client_auth: one mechanism per request; the mechanism must be the
// client's registered one; secrets compared in constant time; client assertions need exp, jti,
// iss = sub = client_id, an accepted aud and a signature by a registered key with an allowed
// asymmetric alg, and are accepted once (oidc-provider's ReplayDetection, shared with it). Every
// authentication failure is `401 invalid_client` "client authentication failed" — the client
// learns nothing about which check failed.
import { createLocalJWKSet, createRemoteJWKSet, customFetch, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import type { ClientMetadata } from 'oidc-provider';

import { sameSecret } from '../http/index.ts';
import { InvalidClientAuth, InvalidRequest } from './errors.ts';

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Asymmetric only: private_key_jwt assertions, never HMAC over a shared secret. */
export const CLIENT_AUTH_SIGNING_ALGS = ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA'];

/** Seconds of clock skew tolerated on client assertions (oidc-provider's clockTolerance). */
export const CLOCK_TOLERANCE = 15;

/** The request parameters client authentication reads. */
export const CLIENT_AUTH_PARAMETERS = ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'] as const;

export interface ClientAuthRequest {
  /** The Authorization header, if any. */
  authorization: string | undefined;
  /** Parameters of the request body (single values; duplicates were refused before). */
  params: Readonly<Record<string, string | undefined>>;
  /** Audiences a client assertion may name besides the issuer: the token endpoint URL(s). */
  audiences: readonly string[];
}

export interface AuthenticatedClient {
  clientId: string;
  metadata: ClientMetadata;
}

export interface ClientAuthenticator {
  authenticate(request: ClientAuthRequest): Promise<AuthenticatedClient>;
  /** The registered verification keys of a private_key_jwt client (also for its actor tokens). */
  keysFor(clientId: string): JWTVerifyGetKey | undefined;
}

export interface ClientAuthDeps {
  issuer: string;
  clients: readonly ClientMetadata[];
  /** True the first time (iss, jti) is seen before `expiresAt` (seconds), false on replay. */
  unique(iss: string, jti: string, expiresAt: number): Promise<boolean>;
  /** What jwks_uri documents are fetched with. */
  fetch: typeof fetch;
}

/** 401 invalid_client "client authentication failed", whatever the check that failed. */
const authFailed = () => new InvalidClientAuth();

// RFC 6749 Appendix A: VSCHAR = %x20-7E; oidc-provider refuses other characters after decoding.
const NOT_VSCHAR = /[^\x20-\x7E]/;
const BASE64 = /^([A-Za-z0-9+/]*)(={0,2})$/;

function isValidBase64(input: string): boolean {
  const match = BASE64.exec(input);
  if (!match?.[1]) return false;
  const remainder = match[1].length % 4;
  if (!match[2]) return remainder !== 1;
  return (match[1].length + match[2].length) % 4 === 0 && match[2].length === 4 - remainder;
}

function formDecode(value: string): string {
  const decoded = decodeURIComponent(value.replace(/\+/g, '%20'));
  if (NOT_VSCHAR.test(decoded)) throw new Error('invalid character found');
  return decoded;
}


/** Client id and secret of an HTTP Basic header (RFC 6749 §2.3.1: form-encoded, then base64). */
function parseBasic(header: string): { clientId: string; secret: string } {
  const parts = header.split(' ');
  if (parts.length !== 2 || parts[0]!.toLowerCase() !== 'basic' || !isValidBase64(parts[1]!)) {
    throw new InvalidRequest('invalid authorization header value format');
  }
  const basic = Buffer.from(parts[1]!, 'base64').toString('utf8');
  const colon = basic.indexOf(':');
  if (colon === -1) throw new InvalidRequest('invalid authorization header value format');
  let clientId: string;
  let secret: string;
  try {
    clientId = formDecode(basic.slice(0, colon));
    secret = formDecode(basic.slice(colon + 1));
  } catch {
    throw new InvalidRequest('client_id and client_secret in the authorization header are not properly encoded');
  }
  if (!secret) throw new InvalidRequest('client_secret must be provided in the Authorization header');
  return { clientId, secret };
}

export function createClientAuthenticator(deps: ClientAuthDeps): ClientAuthenticator {
  const clients = new Map(deps.clients.map((client) => [client.client_id, client]));
  const keySets = new Map<string, JWTVerifyGetKey>();

  function keysFor(clientId: string): JWTVerifyGetKey | undefined {
    const client = clients.get(clientId);
    if (client?.token_endpoint_auth_method !== 'private_key_jwt') return undefined;
    let keys = keySets.get(clientId);
    if (!keys) {
      keys = client.jwks
        ? createLocalJWKSet(client.jwks as JSONWebKeySet)
        : createRemoteJWKSet(new URL(String(client.jwks_uri)), { [customFetch]: (url, init) => deps.fetch(url, init as RequestInit) });
      keySets.set(clientId, keys);
    }
    return keys;
  }

  async function verifyAssertion(clientId: string, assertion: string, audiences: ReadonlySet<string>): Promise<void> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    let payload: ReturnType<typeof decodeJwt>;
    try {
      header = decodeProtectedHeader(assertion);
      payload = decodeJwt(assertion);
    } catch {
      throw authFailed();
    }
    if (typeof header.alg !== 'string' || !CLIENT_AUTH_SIGNING_ALGS.includes(header.alg)) throw authFailed();
    if (!payload.exp || !payload.jti || payload.iss !== clientId || !payload.aud) throw authFailed();
    const named = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    if (!named.some((aud) => audiences.has(aud))) throw authFailed();
    const keys = keysFor(clientId);
    if (!keys) throw authFailed();
    try {
      await jwtVerify(assertion, keys, { algorithms: CLIENT_AUTH_SIGNING_ALGS, clockTolerance: CLOCK_TOLERANCE });
    } catch {
      throw authFailed();
    }
    if (!(await deps.unique(clientId, payload.jti, payload.exp + CLOCK_TOLERANCE))) throw authFailed();
  }

  async function authenticate({ authorization, params, audiences }: ClientAuthRequest): Promise<AuthenticatedClient> {
    const mechanisms = [authorization, params.client_assertion, params.client_secret].filter(Boolean).length;
    if (mechanisms > 1) throw new InvalidRequest('client authentication must only be provided using one mechanism');

    let clientId = params.client_id;
    const claim = (value: string) => {
      if (clientId !== undefined && clientId !== value) throw new InvalidRequest('client_id mismatch');
      clientId = value;
    };
    let methods: readonly string[];
    let secret: string | undefined;
    if (params.client_secret) {
      secret = params.client_secret;
      methods = ['client_secret_basic', 'client_secret_post'];
    } else if (authorization !== undefined) {
      const basic = parseBasic(authorization);
      claim(basic.clientId);
      secret = basic.secret;
      methods = ['client_secret_basic', 'client_secret_post'];
    } else if (params.client_assertion !== undefined) {
      let sub: unknown;
      try {
        ({ sub } = decodeJwt(params.client_assertion));
      } catch {
        throw new InvalidRequest('invalid client_assertion format');
      }
      if (typeof sub !== 'string' || !sub) throw authFailed();
      if (params.client_assertion_type === undefined) throw new InvalidRequest('client_assertion_type must be provided');
      if (params.client_assertion_type !== CLIENT_ASSERTION_TYPE) {
        throw new InvalidRequest(`client_assertion_type must have value ${CLIENT_ASSERTION_TYPE}`);
      }
      claim(sub);
      methods = ['private_key_jwt'];
    } else {
      methods = ['none'];
    }
    if (!clientId) throw new InvalidRequest('no client authentication mechanism provided');

    const metadata = clients.get(clientId);
    if (!metadata) throw authFailed();
    const method = metadata.token_endpoint_auth_method ?? 'client_secret_basic';
    if (!methods.includes(method)) throw authFailed();
    if (method === 'client_secret_basic' || method === 'client_secret_post') {
      if (!sameSecret(String(metadata.client_secret ?? ''), secret ?? '') || !metadata.client_secret) throw authFailed();
    } else if (method === 'private_key_jwt') {
      await verifyAssertion(clientId, params.client_assertion!, new Set([deps.issuer, ...audiences]));
    }
    return { clientId, metadata };
  }

  return { authenticate, keysFor };
}
