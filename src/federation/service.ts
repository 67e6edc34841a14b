// Federation: turning "sign in with Okta / Entra / Google" into an enterprise session.
//   start     — picks a connector, records a transaction (state, nonce, PKCE verifier) bound to
//               this browser, and returns the IdP's authorization URL;
//   callback  — takes the transaction once (atomically), checks it belongs to this browser and
//               this IdP's callback (mix-up defence), lets the connector validate the response,
//               maps groups to roles, creates the enterprise session, and hands the result to
//               the waiting oidc-provider interaction;
//   backchannelLogout — OIDC Back-Channel Logout 1.0: ends the sessions the IdP names.
//   samlAcs   — SAML Web Browser SSO (profiles §4.1): the connector validates the posted
//               Response without consuming anything; then the pending request (InResponseTo,
//               `saml:request:{id}`) is checked against this browser and IdP, the assertion id
//               is claimed (`SET NX` until NotOnOrAfter) and the request taken (GETDEL) — only
//               after every check passed, so a forged post cannot burn a genuine pending
//               request, and of two concurrent posts of one response at most one makes a session.
import { createHash, randomBytes } from 'node:crypto';

import * as client from 'openid-client';

import type { Config } from '../config/index.ts';
import { createAuditTrail } from '../ops/index.ts';
import type { Logger } from '../ops/index.ts';
import type { Policy } from '../policy/index.ts';
import type { CookieSigner, SessionService } from '../session/index.ts';
import { accountIdOf } from '../session/index.ts';
import type { Store } from '../store/index.ts';
import { FederationError } from './errors.ts';
import { createOidcConnector } from './oidc/connector.ts';
import { createSamlConnector, isSamlConnector } from './saml/connector.ts';
import { newMessageId } from './saml/messages.ts';
import type { Connector, SignInTransaction } from './types.ts';

/** What the interaction needs to finish the sign-in (stored under the interaction uid). */
export interface FederatedLogin {
  sid: string;
  accountId: string;
  acr?: string;
  amr: string[];
  authTime: number;
}

export interface Federation {
  readonly connectors: ReadonlyMap<string, Connector>;
  /** Home-realm discovery: the connector for the domain of an email, if any. */
  discover(loginHint: string | undefined): Connector | undefined;
  /** Starts a sign-in; returns where to send the browser and the cookie that binds it. */
  start(input: { idp: string; interactionUid: string; loginHint?: string; acrValues?: string; maxAge?: number; cookieHeader?: string }): Promise<{ location: string; setCookie?: string }>;
  /** Completes a sign-in from the IdP's redirect; returns the interaction to resume. */
  callback(input: { idp: string; query: string; cookieHeader?: string }): Promise<{ interactionUid: string; login: FederatedLogin }>;
  /** The login waiting for an interaction (taken once). */
  takeLogin(interactionUid: string): Promise<FederatedLogin | undefined>;
  backchannelLogout(idp: string, logoutToken: string): Promise<{ ended: number }>;
  /** Completes a SAML sign-in from a posted Response; returns the interaction to resume. */
  samlAcs(input: { idp: string; samlResponse: string; relayState?: string; cookieHeader?: string }): Promise<{ interactionUid: string; login: FederatedLogin }>;
  /** Audits a failed sign-in (`federation.login_failed`); never throws. */
  recordFailure(input: { idp?: string; error: FederationError; reqId: string }): Promise<void>;
}

export interface FederationDeps {
  config: Config;
  store: Store;
  sessions: SessionService;
  policy: Policy;
  cookies: CookieSigner;
  logger: Logger;
  fetch: typeof fetch;
  /** Seconds since the epoch. */
  now?: () => number;
}

const TX_TTL = 600;
export const BROWSER_COOKIE = 'agentgate.fed';
/** The SAML twin of BROWSER_COOKIE: scoped to the ACS paths, and SameSite=None over https (the IdP POSTs cross-site). */
export const SAML_BROWSER_COOKIE = 'agentgate.saml';
export const samlRequestKey = (requestId: string) => `saml:request:${requestId}`;
const samlAssertionKey = (idp: string, assertionId: string) => `saml:assertion:${idp}:${sha256(assertionId)}`;
const txKey = (state: string) => `fed:tx:${state}`;
const loginKey = (uid: string) => `fed:login:${uid}`;
const logoutJtiKey = (idp: string, jti: string) => `fed:bcl:${idp}:${jti}`;
const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

export function createFederation(deps: FederationDeps): Federation {
  const { config, store, sessions, policy, cookies, logger } = deps;
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const issuerUrl = new URL(config.issuer);
  const base = issuerUrl.pathname === '/' ? '' : issuerUrl.pathname.replace(/\/$/, '');
  const secure = issuerUrl.protocol === 'https:';
  const callbackPath = `${base}/federation/oidc`;

  const audit = createAuditTrail(store, logger, now);
  const connectors = new Map<string, Connector>(config.identityProviders.map((idp) => [idp.id, idp.type === 'saml'
    ? createSamlConnector(idp, { issuer: config.issuer, fetch: deps.fetch, now, logger })
    : createOidcConnector(idp, {
      redirectUri: `${config.issuer}/federation/oidc/${idp.id}/callback`,
      fetch: deps.fetch,
      now,
      logger,
      allowInsecureLoopback: config.mode === 'development',
    })]));
  const byDomain = new Map<string, Connector>();
  for (const connector of connectors.values()) for (const domain of connector.domains) byDomain.set(domain, connector);

  function connector(idp: string): Connector {
    const found = connectors.get(idp);
    if (!found) throw new FederationError('ERR_FEDERATION_UNKNOWN_IDP', `there is no identity provider "${idp}" here`);
    return found;
  }

  return {
    connectors,

    discover(loginHint) {
      const domain = loginHint?.includes('@') ? loginHint.split('@').pop()?.trim().toLowerCase() : undefined;
      return domain ? byDomain.get(domain) : undefined;
    },

    async start({ idp, interactionUid, loginHint, acrValues, maxAge, cookieHeader }) {
      const chosen = connector(idp);
      const saml = isSamlConnector(chosen);
      // One random binding value per browser, kept in a signed cookie scoped to the callbacks.
      const cookieName = saml ? SAML_BROWSER_COOKIE : BROWSER_COOKIE;
      let binding = cookies.read(cookieHeader, cookieName);
      let setCookie: string | undefined;
      if (!binding) {
        binding = randomBytes(24).toString('base64url');
        setCookie = cookies.serialize(cookieName, binding, saml
          ? { path: `${base}/federation/saml`, maxAge: TX_TTL, secure, ...(secure ? { sameSite: 'None' as const } : {}) }
          : { path: callbackPath, maxAge: TX_TTL, secure });
      }
      const tx: SignInTransaction = {
        idp,
        interactionUid,
        state: client.randomState(),
        nonce: client.randomNonce(),
        codeVerifier: client.randomPKCECodeVerifier(),
        browser: sha256(binding),
        ...(maxAge !== undefined ? { maxAge } : {}),
        ...(saml ? { requestId: newMessageId() } : {}),
        createdAt: now(),
      };
      const url = await chosen.begin(tx, { ...(loginHint ? { loginHint } : {}), ...(acrValues ? { acrValues } : {}), ...(maxAge !== undefined ? { maxAge } : {}) });
      await store.set(tx.requestId ? samlRequestKey(tx.requestId) : txKey(tx.state), JSON.stringify(tx), { ttl: TX_TTL });
      return { location: url.href, ...(setCookie ? { setCookie } : {}) };
    },

    async callback({ idp, query, cookieHeader }) {
      const chosen = connector(idp);
      const params = new URLSearchParams(query);
      const state = params.get('state');
      // Taken once: a replayed response (or a second tab racing) finds nothing.
      const raw = state ? await store.take(txKey(state)) : null;
      if (!raw) {
        throw new FederationError('ERR_FEDERATION_STATE', 'this sign-in has expired or was already completed; start again from the application', state ? 'unknown or used state' : 'no state');
      }
      const tx = JSON.parse(raw) as SignInTransaction;
      const binding = cookies.read(cookieHeader, BROWSER_COOKIE);
      if (!binding || sha256(binding) !== tx.browser) {
        throw new FederationError('ERR_FEDERATION_STATE', 'this sign-in was started in another browser; start again from the application', 'browser binding mismatch');
      }
      if (tx.idp !== idp) {
        throw new FederationError('ERR_FEDERATION_STATE', 'this sign-in response arrived at the wrong identity provider callback', `tx for ${tx.idp} at ${idp} callback (mix-up defence)`);
      }
      const callbackUrl = new URL(`${config.issuer}/federation/oidc/${idp}/callback?${params}`);
      const { identity, upstream } = await chosen.complete(callbackUrl, tx);
      const { roles } = policy.resolveRoles(identity);
      const session = await sessions.create({ identity, roles, upstream });
      const login: FederatedLogin = {
        sid: session.sid,
        accountId: accountIdOf(identity),
        ...(identity.acr ? { acr: identity.acr } : {}),
        amr: identity.amr,
        authTime: identity.authTime,
      };
      await store.set(loginKey(tx.interactionUid), JSON.stringify(login), { ttl: TX_TTL });
      await audit.record('federation.login_succeeded', { idp, sub: session.accountId, sid: session.sid, roles, groupsComplete: identity.groupsComplete });
      return { interactionUid: tx.interactionUid, login };
    },

    async samlAcs({ idp, samlResponse, relayState, cookieHeader }) {
      const chosen = connector(idp);
      if (!isSamlConnector(chosen)) {
        throw new FederationError('ERR_FEDERATION_STATE', 'this sign-in response arrived at the wrong identity provider endpoint', `SAML post for OIDC IdP ${idp}`);
      }
      // Everything is checked before anything is consumed.
      const result = await chosen.validateResponse(samlResponse);
      if (!result.inResponseTo) {
        throw new FederationError('ERR_SAML_UNSOLICITED', 'this identity provider may not start sign-ins here; start from the application', 'unsolicited response (no InResponseTo)');
      }
      // A used assertion says "replay", whether or not its request is still pending.
      if (await store.get(samlAssertionKey(idp, result.assertionId))) {
        throw new FederationError('ERR_SAML_REPLAY', 'this sign-in response was already used; start again from the application', 'assertion id replay');
      }
      const raw = await store.get(samlRequestKey(result.inResponseTo));
      if (!raw) {
        throw new FederationError('ERR_SAML_IN_RESPONSE_TO', 'this sign-in has expired or was already completed; start again from the application', 'unknown or used InResponseTo');
      }
      const tx = JSON.parse(raw) as SignInTransaction;
      if (tx.idp !== idp) {
        throw new FederationError('ERR_SAML_IN_RESPONSE_TO', 'this sign-in response arrived at the wrong identity provider endpoint', `request for ${tx.idp} at ${idp} ACS`);
      }
      const binding = cookies.read(cookieHeader, SAML_BROWSER_COOKIE);
      if (!binding || sha256(binding) !== tx.browser) {
        throw new FederationError('ERR_FEDERATION_STATE', 'this sign-in was started in another browser; start again from the application', 'browser binding mismatch');
      }
      if (relayState !== tx.state) {
        throw new FederationError('ERR_FEDERATION_STATE', 'this sign-in response does not belong to the sign-in in progress; start again from the application', 'RelayState mismatch');
      }
      // One use of the assertion (until it expires), then one use of the request.
      const ttl = Math.max(1, result.expiresAt - now());
      if (!(await store.set(samlAssertionKey(idp, result.assertionId), '1', { ttl, ifAbsent: true }))) {
        throw new FederationError('ERR_SAML_REPLAY', 'this sign-in response was already used; start again from the application', 'assertion id replay');
      }
      if (!(await store.take(samlRequestKey(result.inResponseTo)))) {
        throw new FederationError('ERR_SAML_REPLAY', 'this sign-in has expired or was already completed; start again from the application', 'InResponseTo already consumed');
      }
      const { identity, upstream } = result;
      const { roles } = policy.resolveRoles(identity);
      const session = await sessions.create({ identity, roles, upstream });
      const login: FederatedLogin = {
        sid: session.sid,
        accountId: accountIdOf(identity),
        ...(identity.acr ? { acr: identity.acr } : {}),
        amr: identity.amr,
        authTime: identity.authTime,
      };
      await store.set(loginKey(tx.interactionUid), JSON.stringify(login), { ttl: TX_TTL });
      await audit.record('federation.login_succeeded', { idp, protocol: 'saml', sub: session.accountId, sid: session.sid, roles, groupsComplete: identity.groupsComplete });
      return { interactionUid: tx.interactionUid, login };
    },

    async takeLogin(interactionUid) {
      const raw = await store.take(loginKey(interactionUid));
      return raw ? (JSON.parse(raw) as FederatedLogin) : undefined;
    },

    async backchannelLogout(idp, logoutToken) {
      const chosen = connector(idp);
      const claims = await chosen.verifyLogoutToken(logoutToken);
      // A logout token is used once (OIDC Back-Channel Logout 1.0 §2.6 step 9: jti replay).
      if (!(await store.set(logoutJtiKey(idp, claims.jti), '1', { ttl: 900, ifAbsent: true }))) {
        throw new FederationError('ERR_LOGOUT_TOKEN_INVALID', 'invalid logout token: it was already used (jti replay)');
      }
      const sids = new Set<string>();
      if (claims.sid) for (const sid of await sessions.findByUpstream(idp, claims.sid)) sids.add(sid);
      // By sub: the IdP's own subject (Entra's pairwise sub differs from our tid:oid key).
      if (claims.sub && !claims.sid) for (const sid of await sessions.findByUpstreamSubject(idp, claims.sub)) sids.add(sid);
      let ended = 0;
      for (const sid of sids) if (await sessions.end(sid, 'upstream_logout')) ended += 1;
      await audit.record('session.upstream_logout', { idp, ended, ...(claims.sid ? { upstreamSid: claims.sid } : {}) });
      return { ended };
    },

    async recordFailure({ idp, error, reqId }) {
      try {
        await audit.record('federation.login_failed', { ...(idp ? { idp } : {}), errorCode: error.code, reason: error.detail ?? error.message, reqId });
      } catch (auditError) {
        // The person still gets the error page; the log line above already went out.
        logger.error({ reqId, reason: (auditError as Error).message }, 'audit entry for a failed sign-in could not be stored');
      }
    },
  };
}
