// The OpenID Provider inside every test peer (Okta, Entra ID tenant, Google): oidc-provider with
// the vendor's public https issuer, served behind the loopback internet, with
// - clients registered up front or later, PKCE (S256) required, RS256 ID tokens, claims as the vendor's preset shapes them
//   (`conformIdTokenClaims: false`, so scope-granted claims land in the ID token);
// - a plain HTML login form (fields `username`, `password`) over an in-memory user table, with
//   consent approved automatically;
// - both client_secret_basic and client_secret_post accepted whatever the registration says, as
//   the vendors do (oidc-provider itself only accepts the registered method);
// - OpenID Connect Back-Channel Logout 1.0: logout tokens signed with the issuer's own key, sent
//   by oidc-provider at RP-initiated logout or on demand by a test (`backchannelLogout()`);
// - tampering for attack tests (`tamperingOf(peer)`): the next token response's ID token
//   re-signed with altered claims (own key, a foreign key under the same kid, alg "none", or
//   HS256 keyed by the client secret), the next authorization response's parameters altered —
//   both around oidc-provider's responses, which stay untouched.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';
import { SignJWT, base64url, calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import Provider, { interactionPolicy } from 'oidc-provider';
import type { Adapter, AdapterPayload, ClientMetadata, Configuration, KoaContextWithOIDC } from 'oidc-provider';

import { basicHeader, escapeHtml, internalRequest, isInternal, parseBasic, readForm, relay } from './host.ts';
import type { LoopbackInternet } from './internet.ts';

export interface PeerClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  post_logout_redirect_uris?: string[];
  /** Where logout tokens go; the ID token then carries `sid` (backchannel_logout_session_required). */
  backchannel_logout_uri?: string;
  /**
   * The registered method. Either method is accepted at the token endpoint regardless (as Okta,
   * Entra and Google do); default 'client_secret_post' (openid-client's default).
   */
  token_endpoint_auth_method?: 'client_secret_post' | 'client_secret_basic';
}

export interface PeerUser {
  username: string;
  password: string;
  /** Authentication methods the sign-in reports (ID token `amr`). */
  amr?: string[];
  /** Authentication context class the sign-in reports (ID token `acr`). */
  acr?: string;
}

export interface SigningKey {
  kid: string;
  alg: 'RS256';
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export interface LogoutTokenOptions {
  /** Header `kid` (default: the issuer key's). */
  kid?: string;
  /** Header `alg` (default RS256); 'none' makes an unsigned token. */
  alg?: string;
  /** Signing key (default: the issuer's own private key). */
  key?: CryptoKey | KeyObject | Uint8Array;
  /** Header `typ` (default 'logout+jwt'). */
  typ?: string;
}

export interface BackchannelLogoutOptions {
  sub?: string;
  sid?: string;
  /** Shortcut: `sub` as this user's subject for the client, `sid` as their current peer session. */
  username?: string;
  /** Which registered client to notify (default: the first with a backchannel_logout_uri). */
  clientId?: string;
  /** Extra or overriding claims (a key set to undefined is removed). */
  claims?: Record<string, unknown>;
  signing?: LogoutTokenOptions;
}

export interface BackchannelLogoutResult {
  status: number;
  body: string;
  logoutToken: string;
}

/** A logout token oidc-provider itself sent (at RP-initiated logout). */
export interface LogoutDelivery {
  uri: string;
  logoutToken: string;
  status?: number;
  error?: string;
}

export interface ClaimsContext {
  clientId: string;
  use: 'id_token' | 'userinfo';
  scope: string;
  /** The access token issued alongside the ID token: return it as `at_hash` and oidc-provider hashes it. */
  accessToken?: string;
}

/** What the peers share: the handle a test drives one issuer through. */
export interface OidcPeerHandle<U extends PeerUser> {
  readonly issuer: string;
  readonly key: SigningKey;
  readonly clients: ReadonlyMap<string, PeerClient>;
  /** Registers or replaces a client (e.g. once the gateway's port, hence its redirect_uri, is known). */
  setClient(client: PeerClient): Promise<void>;
  removeClient(clientId: string): Promise<void>;
  readonly users: ReadonlyMap<string, U>;
  /** Adds or replaces a user (by username, case-insensitive). */
  setUser(user: U): void;
  removeUser(username: string): void;
  /** Signs an OIDC Back-Channel Logout 1.0 logout token with the issuer's key (claims override the defaults). */
  signLogoutToken(claims?: Record<string, unknown>, options?: LogoutTokenOptions): Promise<string>;
  /** POSTs a fresh logout token to a client's backchannel_logout_uri through the loopback internet. */
  backchannelLogout(options: BackchannelLogoutOptions): Promise<BackchannelLogoutResult>;
  /** The `sid` of this user's current peer session for the client (default: any client), if signed in. */
  sessionSid(username: string, clientId?: string): string | undefined;
  /** The `sub` this user has toward the client. */
  subjectFor(username: string, clientId?: string): string;
  /** Logout tokens oidc-provider sent at RP-initiated logout, oldest first. */
  readonly logoutDeliveries: readonly LogoutDelivery[];
}

/**
 * How a tampered ID token is signed:
 * - 'peer': the issuer's own key (same kid) — a validly signed token with wrong claims;
 * - 'foreign-key': a freshly generated RSA key, announced under the issuer's kid;
 * - 'none': unsigned (`alg: none`, empty signature);
 * - 'hs256-with-client-secret': HS256 keyed by the client's secret (algorithm confusion).
 */
export type TamperedSigning = 'peer' | 'foreign-key' | 'none' | 'hs256-with-client-secret';

/** Attack tests: alter what the issuer answers, once. */
export interface PeerTampering {
  /**
   * The NEXT token-endpoint response carrying an `id_token`: its claims are decoded, passed to
   * `fn` (mutate them, or return replacements), and re-signed as `options.sign` says (default
   * 'peer').
   */
  tamperNextIdToken(fn?: (claims: JWTPayload) => JWTPayload | void, options?: { sign?: TamperedSigning }): void;
  /** The NEXT authorization response redirected to a client's redirect_uri: `fn` edits its query. */
  tamperNextAuthorizationResponse(fn: (params: URLSearchParams) => void): void;
  /** Forgets tampering not yet applied. */
  resetTampering(): void;
}

/** Tampering of the live issuer with this `issuer` (every peer handle carries its issuer). */
const tamperingByIssuer = new Map<string, PeerTampering>();
export function tamperingOf(peer: { readonly issuer: string }): PeerTampering {
  const found = tamperingByIssuer.get(peer.issuer);
  if (!found) throw new TypeError(`no peer issuer ${peer.issuer} in this process`);
  return found;
}

export interface OidcIssuer<U extends PeerUser> extends OidcPeerHandle<U>, PeerTampering {
  readonly provider: Provider;
  /** Express router to mount at `mountPath`. */
  readonly router: Router;
  readonly mountPath: string;
  userByAccountId(accountId: string): U | undefined;
}

export interface OidcIssuerSpec<U extends PeerUser> {
  internet: LoopbackInternet;
  issuer: string;
  /** Where the router is mounted in the origin's app ('' for the root); defaults to the issuer path. */
  mountPath?: string;
  /** oidc-provider routes, relative to mountPath. */
  routes: NonNullable<Configuration['routes']>;
  clients: PeerClient[];
  /** Extra client metadata oidc-provider should know per client. */
  clientMetadata?: (client: PeerClient) => Partial<ClientMetadata>;
  users: U[];
  scopes: string[];
  /** scope → claims it releases. */
  claims: Record<string, string[]>;
  acrValues?: string[];
  extraParams?: string[];
  /** Page title on the login form. */
  brand: string;
  /** Distinguishes the cookie names of issuers sharing one origin. */
  cookiePrefix?: string;
  accountIdOf(user: U): string;
  claimsOf(user: U, context: ClaimsContext): Record<string, unknown>;
  /**
   * Pairwise subjects (OIDC Core §8.1): `sub` toward a client computed from the account id. Every
   * client is then registered with subject_type pairwise, so ID tokens, userinfo and the logout
   * tokens oidc-provider sends all carry it.
   */
  pairwiseSubject?(accountId: string, clientId: string): string;
  /** Drop `iss` from authorization responses (Entra: openid-client checks it against the /common template). */
  omitAuthorizationResponseIss?: boolean;
  /** Adjusts the discovery document. */
  discovery?(metadata: Record<string, unknown>): void;
  /**
   * Runs first on a POST to the token endpoint, with the parsed form: return true when it
   * answered itself (Entra's client-credentials tokens for Graph).
   */
  tokenHook?(req: Request, res: Response, form: URLSearchParams): Promise<boolean>;
}

const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const INTERACTION_TTL = 600;

export async function generatePeerSigningKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = (await calculateJwkThumbprint(publicJwk)).slice(0, 27);
  return { kid, alg: 'RS256', privateKey, publicJwk: { ...publicJwk, kid, use: 'sig', alg: 'RS256' } };
}

/** A per-issuer in-memory adapter (oidc-provider's own memory adapter is one store for the whole process). */
export function createMemoryAdapter() {
  const records = new Map<string, { model: string; payload: AdapterPayload; expiresAt?: number; seq: number }>();
  let seq = 0;
  const keyOf = (model: string, id: string) => `${model}:${id}`;
  const live = (key: string) => {
    const record = records.get(key);
    if (record?.expiresAt !== undefined && record.expiresAt <= Date.now()) {
      records.delete(key);
      return undefined;
    }
    return record;
  };
  /** Every live payload of a model, most recently written first. */
  const all = (model: string): AdapterPayload[] =>
    [...records.keys()]
      .flatMap((key) => {
        const record = live(key);
        return record?.model === model ? [record] : [];
      })
      .sort((a, b) => b.seq - a.seq)
      .map((record) => structuredClone(record.payload));

  const factory = (model: string): Adapter => ({
    async upsert(id, payload, expiresIn) {
      seq += 1;
      records.set(keyOf(model, id), {
        model,
        seq,
        payload: structuredClone(payload),
        ...(expiresIn ? { expiresAt: Date.now() + expiresIn * 1000 } : {}),
      });
    },
    async find(id) {
      const record = live(keyOf(model, id));
      return record ? structuredClone(record.payload) : undefined;
    },
    async findByUid(uid) {
      return all(model).find((payload) => payload.uid === uid);
    },
    async findByUserCode(userCode) {
      return all(model).find((payload) => payload.userCode === userCode);
    },
    async consume(id) {
      const record = live(keyOf(model, id));
      if (record) record.payload.consumed = Math.floor(Date.now() / 1000);
    },
    async destroy(id) {
      records.delete(keyOf(model, id));
    },
    async revokeByGrantId(grantId) {
      for (const [key, record] of records) if (record.payload.grantId === grantId) records.delete(key);
    },
  });
  return { factory, all };
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>${body}</body></html>`;
}

export function loginPage(brand: string, action: string, username: string, problem?: string): string {
  return page(`Sign in - ${brand}`, `<h1>Sign in to ${escapeHtml(brand)}</h1>
${problem ? `<p role="alert" class="error">${escapeHtml(problem)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}">
<label>Username <input name="username" autocomplete="username" value="${escapeHtml(username)}"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form>`);
}

type Handler = (req: Request, res: Response, next: NextFunction) => Promise<void>;
const wrap = (fn: Handler) => (req: Request, res: Response, next: NextFunction) => { fn(req, res, next).catch(next); };

export async function createOidcIssuer<U extends PeerUser>(spec: OidcIssuerSpec<U>): Promise<OidcIssuer<U>> {
  const { internet, issuer } = spec;
  const issuerPath = new URL(issuer).pathname.replace(/\/$/, '');
  const mountPath = spec.mountPath ?? issuerPath;
  const key = await generatePeerSigningKey();
  const privateJwk = { ...(await exportJWK(key.privateKey)), kid: key.kid, use: 'sig', alg: 'RS256' };
  const adapter = createMemoryAdapter();
  const clients = new Map(spec.clients.map((client) => [client.client_id, client]));
  const users = new Map<string, U>();
  const logoutDeliveries: LogoutDelivery[] = [];
  for (const user of spec.users) users.set(user.username.toLowerCase(), user);

  const userByName = (username: string) => users.get(username.toLowerCase());
  const userByAccountId = (accountId: string) => [...users.values()].find((user) => spec.accountIdOf(user) === accountId);
  const subjectOf = (user: U, clientId: string) =>
    spec.pairwiseSubject?.(spec.accountIdOf(user), clientId) ?? spec.accountIdOf(user);

  async function signLogoutToken(claims: Record<string, unknown> = {}, options: LogoutTokenOptions = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const payload: Record<string, unknown> = {
      iss: issuer,
      aud: [...clients.keys()][0],
      iat: now,
      exp: now + 120,
      jti: randomUUID(),
      events: { [LOGOUT_EVENT]: {} },
      ...claims,
    };
    for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
    const header = { alg: options.alg ?? 'RS256', typ: options.typ ?? 'logout+jwt', kid: options.kid ?? key.kid };
    if (header.alg === 'none') {
      const encode = (value: unknown) => base64url.encode(JSON.stringify(value));
      return `${encode({ alg: 'none', typ: header.typ })}.${encode(payload)}.`;
    }
    return new SignJWT(payload).setProtectedHeader(header).sign(options.key ?? key.privateKey);
  }

  function sessionSid(username: string, clientId?: string): string | undefined {
    const user = userByName(username);
    if (!user) return undefined;
    const accountId = spec.accountIdOf(user);
    // Most recently active session first.
    const sessions = adapter.all('Session').filter((session) => session.accountId === accountId);
    for (const session of sessions) {
      const authorizations = (session.authorizations ?? {}) as Record<string, { sid?: string }>;
      const sid = clientId ? authorizations[clientId]?.sid : Object.values(authorizations)[0]?.sid;
      if (sid) return sid;
    }
    return undefined;
  }

  async function backchannelLogout(options: BackchannelLogoutOptions): Promise<BackchannelLogoutResult> {
    const client = options.clientId
      ? clients.get(options.clientId)
      : [...clients.values()].find((candidate) => candidate.backchannel_logout_uri);
    if (!client?.backchannel_logout_uri) {
      throw new TypeError(`client ${options.clientId ?? '(any)'} has no backchannel_logout_uri`);
    }
    let { sub, sid } = options;
    if (options.username) {
      const user = userByName(options.username);
      if (!user) throw new TypeError(`unknown user ${options.username}`);
      sub ??= subjectOf(user, client.client_id);
      sid ??= sessionSid(options.username, client.client_id);
    }
    if (sub === undefined && sid === undefined && !options.claims) throw new TypeError('backchannelLogout needs sub, sid or username');
    const logoutToken = await signLogoutToken({
      aud: client.client_id,
      ...(sub !== undefined ? { sub } : {}),
      ...(sid !== undefined ? { sid } : {}),
      ...options.claims,
    }, options.signing);
    const response = await internet.fetch(client.backchannel_logout_uri, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: logoutToken }),
      redirect: 'manual',
    });
    return { status: response.status, body: await response.text(), logoutToken };
  }

  // oidc-provider's outgoing requests (logout tokens at RP-initiated logout) go through the
  // loopback internet; its SSRF guard (a dispatcher refusing loopback) is dropped, since every
  // peer and gateway lives on loopback here.
  async function providerFetch(input: string | URL | globalThis.Request, init: RequestInit = {}): Promise<globalThis.Response> {
    const { dispatcher: _dispatcher, ...rest } = init as RequestInit & { dispatcher?: unknown };
    const uri = String(input instanceof globalThis.Request ? input.url : input);
    const logoutToken = rest.body instanceof URLSearchParams ? rest.body.get('logout_token') : null;
    const delivery: LogoutDelivery | undefined = logoutToken ? { uri, logoutToken } : undefined;
    if (delivery) logoutDeliveries.push(delivery);
    try {
      const response = await internet.fetch(input, rest);
      if (delivery) delivery.status = response.status;
      return response;
    } catch (error) {
      if (delivery) delivery.error = (error as Error).message;
      throw error;
    }
  }

  let pendingIdToken: { fn?: (claims: JWTPayload) => JWTPayload | void; sign: TamperedSigning } | undefined;
  let pendingAuthorizationResponse: ((params: URLSearchParams) => void) | undefined;
  let foreignKey: CryptoKey | undefined;

  async function resign(idToken: string, tamper: NonNullable<typeof pendingIdToken>, clientId: string | undefined): Promise<string> {
    const decoded = decodeJwt(idToken);
    const claims = tamper.fn?.(decoded) ?? decoded;
    const header = decodeProtectedHeader(idToken);
    switch (tamper.sign) {
      case 'peer':
        return new SignJWT(claims).setProtectedHeader({ ...header, alg: 'RS256', kid: key.kid }).sign(key.privateKey);
      case 'foreign-key':
        foreignKey ??= (await generateKeyPair('RS256', { modulusLength: 2048 })).privateKey;
        return new SignJWT(claims).setProtectedHeader({ ...header, alg: 'RS256', kid: key.kid }).sign(foreignKey);
      case 'none': {
        const encode = (value: unknown) => base64url.encode(JSON.stringify(value));
        return `${encode({ alg: 'none', ...(header.typ ? { typ: header.typ } : {}) })}.${encode(claims)}.`;
      }
      case 'hs256-with-client-secret': {
        const audience = typeof claims.aud === 'string' ? claims.aud : clientId;
        const secret = clients.get(audience ?? '')?.client_secret ?? clients.get(clientId ?? '')?.client_secret;
        if (!secret) throw new TypeError(`tamperNextIdToken: no client secret for ${audience ?? '(no client)'}`);
        return new SignJWT(claims).setProtectedHeader({ ...header, alg: 'HS256', kid: key.kid }).sign(new TextEncoder().encode(secret));
      }
      default:
        throw new TypeError(`tamperNextIdToken: unknown signing ${String(tamper.sign)}`);
    }
  }

  const tampering: PeerTampering = {
    tamperNextIdToken(fn, options = {}) {
      pendingIdToken = { ...(fn ? { fn } : {}), sign: options.sign ?? 'peer' };
    },
    tamperNextAuthorizationResponse(fn) {
      pendingAuthorizationResponse = fn;
    },
    resetTampering() {
      pendingIdToken = undefined;
      pendingAuthorizationResponse = undefined;
    },
  };
  tamperingByIssuer.set(issuer, tampering);

  const policy = interactionPolicy.base();
  // Accepted (Google and Entra RPs send prompt=select_account) and resolved at once: the test
  // browser has one account per peer.
  policy.add(new interactionPolicy.Prompt({ name: 'select_account', requestable: true }));

  // Clients live in the adapter (oidc-provider's "dynamic" clients, looked up on every use), not
  // in the static list, so a test can register or change one after the peer started.
  const clientAdapter = adapter.factory('Client');
  const metadataOf = (client: PeerClient): AdapterPayload => ({
    client_id: client.client_id,
    client_secret: client.client_secret,
    redirect_uris: client.redirect_uris,
    post_logout_redirect_uris: client.post_logout_redirect_uris ?? [],
    response_types: ['code'],
    grant_types: spec.scopes.includes('offline_access') ? ['authorization_code', 'refresh_token'] : ['authorization_code'],
    token_endpoint_auth_method: client.token_endpoint_auth_method ?? 'client_secret_post',
    id_token_signed_response_alg: 'RS256',
    ...(client.backchannel_logout_uri
      ? { backchannel_logout_uri: client.backchannel_logout_uri, backchannel_logout_session_required: true }
      : {}),
    // The sector identifier is never fetched (sectorIdentifierUriValidate below); it only
    // satisfies oidc-provider's rule for pairwise clients whose redirect_uris span hosts.
    ...(spec.pairwiseSubject ? { subject_type: 'pairwise', sector_identifier_uri: `${issuer}/sector/${encodeURIComponent(client.client_id)}` } : {}),
    ...spec.clientMetadata?.(client),
  });
  async function setClient(client: PeerClient): Promise<void> {
    if (!client.client_id || !client.client_secret) throw new TypeError('setClient: client_id and client_secret are required');
    clients.set(client.client_id, client);
    await clientAdapter.upsert(client.client_id, metadataOf(client), 0);
  }
  async function removeClient(clientId: string): Promise<void> {
    clients.delete(clientId);
    await clientAdapter.destroy(clientId);
  }
  for (const client of spec.clients) await setClient(client);

  const cookiePrefix = spec.cookiePrefix ?? '';
  const configuration: Configuration = {
    adapter: adapter.factory,
    ...(spec.pairwiseSubject
      ? {
        subjectTypes: ['pairwise'],
        pairwiseIdentifier: async (_ctx: KoaContextWithOIDC, accountId: string, client: { clientId: string }) =>
          spec.pairwiseSubject!(accountId, client.clientId),
        sectorIdentifierUriValidate: () => false,
      }
      : {}),
    jwks: { keys: [privateJwk] } as Configuration['jwks'],
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      names: {
        session: `${cookiePrefix}_session`,
        interaction: `${cookiePrefix}_interaction`,
        resume: `${cookiePrefix}_interaction_resume`,
      },
    },
    pkce: { required: () => true },
    responseTypes: ['code'],
    scopes: spec.scopes,
    claims: spec.claims,
    acrValues: spec.acrValues ?? [],
    extraParams: spec.extraParams ?? [],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
    enabledJWA: { idTokenSigningAlgValues: ['RS256'] },
    conformIdTokenClaims: false,
    routes: spec.routes,
    fetch: providerFetch,
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: false },
      backchannelLogout: { enabled: true },
      userinfo: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // The confirmation page submits itself (the test browser posts auto-submit forms).
        logoutSource: async (ctx, form) => {
          ctx.type = 'html';
          ctx.body = page('Signing out', `${form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>')}
<script>document.addEventListener('DOMContentLoaded', function () { document.forms[0].submit() });</script>`);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.type = 'html';
          ctx.body = page('Signed out', `<h1>You have been signed out of ${escapeHtml(spec.brand)}</h1>`);
        },
      },
    },
    findAccount: async (ctx, accountId) => {
      const user = userByAccountId(accountId);
      if (!user) return undefined;
      return {
        accountId,
        claims: async (use, scope) => {
          const accessToken = ctx.oidc.entities.AccessToken?.jti;
          return {
            sub: accountId,
            ...spec.claimsOf(user, {
              clientId: ctx.oidc.client?.clientId ?? '',
              use: use === 'userinfo' ? 'userinfo' : 'id_token',
              scope,
              ...(accessToken ? { accessToken } : {}),
            }),
          };
        },
      };
    },
    interactions: {
      policy,
      url: (_ctx, interaction) => `${mountPath}/interaction/${interaction.uid}`,
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page(`${spec.brand} error`, `<h1>Sorry, something went wrong</h1>
<p class="error">${escapeHtml(out.error)}</p><p class="error_description">${escapeHtml(out.error_description ?? '')}</p>`);
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 600,
      IdToken: 3600,
      RefreshToken: 86_400,
      Interaction: INTERACTION_TTL,
      Session: 86_400,
      Grant: 86_400,
    },
  };

  const provider = new Provider(issuer, configuration);
  // Behind the loopback internet: x-forwarded-proto/-host carry the public https origin.
  provider.proxy = true;
  provider.use(async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    await next();
    const route = ctx.oidc?.route;
    if (route === 'discovery' && ctx.body && typeof ctx.body === 'object') {
      if (spec.omitAuthorizationResponseIss) delete (ctx.body as Record<string, unknown>).authorization_response_iss_parameter_supported;
      spec.discovery?.(ctx.body as Record<string, unknown>);
    }
    if (spec.omitAuthorizationResponseIss && (route === 'authorization' || route === 'resume')) {
      const location = ctx.response.get('location');
      if (location && /[?&]iss=/.test(location)) {
        const url = new URL(location);
        url.searchParams.delete('iss');
        ctx.response.set('location', url.href);
      }
    }
    if (pendingAuthorizationResponse && (route === 'authorization' || route === 'resume')) {
      const location = ctx.response.get('location');
      const url = location ? new URL(location, issuer) : undefined;
      // Only the redirect back to the client, not the hop to the login interaction.
      if (url && [...clients.values()].some((client) => client.redirect_uris.includes(`${url.origin}${url.pathname}`))) {
        const fn = pendingAuthorizationResponse;
        pendingAuthorizationResponse = undefined;
        fn(url.searchParams);
        ctx.response.set('location', url.href);
      }
    }
    const body = ctx.body as Record<string, unknown> | undefined;
    if (pendingIdToken && route === 'token' && ctx.status === 200 && typeof body?.id_token === 'string') {
      const tamper = pendingIdToken;
      pendingIdToken = undefined;
      body.id_token = await resign(body.id_token, tamper, ctx.oidc.client?.clientId);
    }
  });

  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '16kb' });

  function sendLogin(req: Request, res: Response, uid: string, username: string, status = 200, problem?: string) {
    res.status(status).type('html').set('cache-control', 'no-store')
      .send(loginPage(spec.brand, `${req.baseUrl}/interaction/${encodeURIComponent(uid)}/login`, username, problem));
  }

  async function approveConsent(req: Request, res: Response): Promise<void> {
    const { prompt, params, session, grantId } = await provider.interactionDetails(req, res);
    const details = prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session?.accountId, clientId: String(params.client_id) });
    if (!grant) throw new Error('grant referenced by the interaction no longer exists');
    if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
    if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
    await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
  }

  router.get('/interaction/:uid', wrap(async (req, res) => {
    const { uid, prompt, params } = await provider.interactionDetails(req, res);
    if (prompt.name === 'consent') return approveConsent(req, res);
    if (prompt.name === 'select_account') {
      await provider.interactionFinished(req, res, { select_account: {} }, { mergeWithLastSubmission: true });
      return;
    }
    sendLogin(req, res, uid, typeof params.login_hint === 'string' ? params.login_hint : '');
  }));

  router.post('/interaction/:uid/login', form, wrap(async (req, res) => {
    const { uid, prompt, params } = await provider.interactionDetails(req, res);
    if (prompt.name !== 'login') {
      res.status(400).type('html').send(page(spec.brand, '<p class="error">This sign-in does not expect a password.</p>'));
      return;
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const username = typeof body.username === 'string' ? body.username.trim() : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const user = userByName(username);
    if (!user || user.password !== password) {
      sendLogin(req, res, uid, username, 401, 'Sign-in failed: the username or password is incorrect.');
      return;
    }
    const accountId = spec.accountIdOf(user);
    // Consent is implicit: grant what was asked, so the sign-in needs no second page.
    const grant = new provider.Grant({ accountId, clientId: String(params.client_id) });
    grant.addOIDCScope(String(params.scope ?? 'openid'));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, {
      login: { accountId, ...(user.amr ? { amr: user.amr } : {}), ...(user.acr ? { acr: user.acr } : {}) },
      consent: { grantId },
      select_account: {},
    }, { mergeWithLastSubmission: false });
  }));

  // The issuer path may sit deeper than the mount (Entra: issuer /<tid>/v2.0, endpoints under
  // /<tid>/oauth2/v2.0/…): serve discovery at <issuer>/.well-known/openid-configuration too.
  if (issuerPath !== mountPath && issuerPath.startsWith(mountPath)) {
    const extra = issuerPath.slice(mountPath.length);
    router.get(`${extra}/.well-known/openid-configuration`, (req, _res, next) => {
      const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
      req.url = `/.well-known/openid-configuration${query}`;
      req.originalUrl = `${mountPath}${req.url}`;
      next();
    });
  }

  const tokenPath = spec.routes.token ?? '/token';
  router.post(tokenPath, wrap(async (req, res, next) => {
    if (isInternal(req)) return next();
    const body = await readForm(req);
    if (spec.tokenHook && await spec.tokenHook(req, res, body)) return;
    // Accept both secret methods: present the credentials the way the client is registered.
    const headers: Record<string, string | null> = {};
    const basic = parseBasic(req.headers.authorization);
    const clientId = basic?.id ?? body.get('client_id') ?? '';
    const client = clients.get(clientId);
    if (client) {
      const method = client.token_endpoint_auth_method ?? 'client_secret_post';
      if (method === 'client_secret_post' && basic) {
        headers.authorization = null;
        body.set('client_id', basic.id);
        body.set('client_secret', basic.secret);
      } else if (method === 'client_secret_basic' && !basic && body.has('client_secret')) {
        headers.authorization = basicHeader(clientId, body.get('client_secret') ?? '');
        body.delete('client_secret');
        body.delete('client_id');
      }
    }
    headers['content-type'] = 'application/x-www-form-urlencoded';
    await relay(await internalRequest(req, { path: req.originalUrl, body: body.toString(), headers }), res);
  }));

  const callback = provider.callback();
  router.use((req, res) => { callback(req, res); });

  // Interaction errors (an expired or foreign interaction cookie) as a page, not a stack trace.
  router.use((error: Error, _req: Request, res: Response, _next: NextFunction) => {
    const status = (error as { status?: number }).status ?? 500;
    res.status(status).type('html').send(page(`${spec.brand} error`, `<h1>Sorry, something went wrong</h1>
<p class="error">${escapeHtml(error.name)}</p><p class="error_description">${escapeHtml(error.message)}</p>`));
  });

  return {
    issuer,
    key,
    provider,
    router,
    mountPath,
    clients,
    setClient,
    removeClient,
    users,
    logoutDeliveries,
    setUser: (user) => { users.set(user.username.toLowerCase(), user); },
    removeUser: (username) => { users.delete(username.toLowerCase()); },
    userByAccountId,
    ...tampering,
    signLogoutToken,
    backchannelLogout,
    sessionSid,
    subjectFor(username, clientId) {
      const user = userByName(username);
      if (!user) throw new TypeError(`unknown user ${username}`);
      return subjectOf(user, clientId ?? [...clients.keys()][0] ?? '');
    },
  };
}

/** Deterministic id material for generated identifiers (sub, oid…), so reruns see the same values. */
export function digest(...parts: string[]): Buffer {
  return createHash('sha256').update(parts.join('\u0000')).digest();
}
