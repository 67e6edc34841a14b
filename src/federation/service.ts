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
//               An unsolicited Response (IdP-initiated, profiles §4.1.5) is refused unless the IdP
//               opts in (`idpInitiated`): then, with the same replay cache, the session is made,
//               held for the configured app only (bound to this browser), and the person is sent
//               to the app's login-initiation URL (OIDC Core §4), whose sign-in completes at once.
//   samlLogoutStart / samlLogout — SAML Single Logout (profiles §4.4): our LogoutRequest's ID is
//               stored (`saml:logout:request:{id}`) bound to this browser, and the IdP's
//               LogoutResponse must answer it (InResponseTo, same browser, same RelayState, taken
//               once, Success); a refused logout message is audited (`session.upstream_logout_refused`).
import { createHash, randomBytes } from 'node:crypto';

import * as client from 'openid-client';
import { Gauge } from 'prom-client';

import type { Config } from '../config/index.ts';
import type { FederatedIdentity } from '../identity/index.ts';
import { createAuditTrail } from '../ops/index.ts';
import type { Logger, Metrics } from '../ops/index.ts';
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
  samlAcs(input: { idp: string; samlResponse: string; relayState?: string; cookieHeader?: string }): Promise<
    { interactionUid: string; login: FederatedLogin } | { idpInitiated: { location: string; setCookie: string } }
  >;
  /** The IdP-initiated sign-in this browser holds for this app, if any (taken once). */
  takeIdpInitiatedLogin(input: { clientId: string; cookieHeader?: string }): Promise<FederatedLogin | undefined>;
  /** Expires the IdP-initiated cookie (once used). */
  readonly clearIdpInitiatedCookie: string;
  /**
   * SAML Single Logout at our SLO endpoint: a LogoutRequest from the IdP ends the sessions of its
   * NameID + SessionIndex and answers with a LogoutResponse (`location`); a LogoutResponse to our
   * own request resolves to its RelayState.
   */
  samlLogout(input: { idp: string; cookieHeader?: string } & ({ binding: 'redirect'; query: string } | { binding: 'post'; message: string; relayState?: string })): Promise<{ kind: 'request' | 'response'; ended: number; location?: string; relayState?: string }>;
  /** SP-initiated SAML logout, the step before the IdP: binds this browser and records our LogoutRequest. */
  samlLogoutStart(input: { idp: string; token: string; cookieHeader?: string }): Promise<{ location: string; setCookie: string }>;
  /** Audits a refused logout message (`session.upstream_logout_refused`); never throws. */
  recordLogoutRefused(input: { idp?: string; error: FederationError; reqId: string }): Promise<void>;
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
  /** Where SAML IdP certificate expiry is exported (agentgate_saml_idp_certificate_expiry_timestamp_seconds). */
  metrics?: Metrics;
}

const TX_TTL = 600;

/** Our LogoutRequest awaiting the IdP's LogoutResponse. */
interface PendingLogout {
  idp: string;
  /** Hash of the browser-binding cookie value. */
  browser: string;
  relayState: string;
}
export const BROWSER_COOKIE = 'agentgate.fed';
/** The SAML twin of BROWSER_COOKIE: scoped to the ACS paths, and SameSite=None over https (the IdP POSTs cross-site). */
export const SAML_BROWSER_COOKIE = 'agentgate.saml';
export const samlRequestKey = (requestId: string) => `saml:request:${requestId}`;
/** Our pending LogoutRequest (SP-initiated SLO), which the IdP's LogoutResponse must answer. */
export const samlLogoutRequestKey = (requestId: string) => `saml:logout:request:${requestId}`;
/** Holds an IdP-initiated sign-in for the interaction (path: the interaction routes). */
export const IDP_INITIATED_COOKIE = 'agentgate.idpinit';
const idpInitiatedKey = (bindingHash: string) => `fed:idpinit:${bindingHash}`;
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
    ? createSamlConnector(idp, { issuer: config.issuer, fetch: deps.fetch, now, logger, store })
    : createOidcConnector(idp, {
      redirectUri: `${config.issuer}/federation/oidc/${idp.id}/callback`,
      fetch: deps.fetch,
      now,
      logger,
      allowInsecureLoopback: config.mode === 'development',
    })]));
  if (deps.metrics) {
    const samlConnectors = [...connectors.values()].filter(isSamlConnector);
    // Per certificate (a rollover publishes two): alert when the newest one an IdP publishes is
    // close to its end, e.g. max by (idp) (…) - time() < 30 * 86400.
    const gauge = new Gauge({
      name: 'agentgate_saml_idp_certificate_expiry_timestamp_seconds',
      help: 'When each signing certificate in a SAML IdP\'s metadata expires (seconds since the epoch)',
      labelNames: ['idp', 'fingerprint'] as const,
      registers: [deps.metrics.registry],
      collect() {
        this.reset();
        for (const saml of samlConnectors) {
          for (const cert of saml.signingCertificates()) gauge.set({ idp: saml.id, fingerprint: cert.fingerprint }, cert.notAfter);
        }
      },
    });
  }
  const byDomain = new Map<string, Connector>();
  for (const connector of connectors.values()) for (const domain of connector.domains) byDomain.set(domain, connector);

  /** The enterprise session of a federated sign-in, and what the interaction needs to finish it. */
  async function startSession(identity: FederatedIdentity, upstream: Parameters<SessionService['create']>[0]['upstream']) {
    const { roles } = policy.resolveRoles(identity);
    const session = await sessions.create({ identity, roles, upstream });
    const login: FederatedLogin = {
      sid: session.sid,
      accountId: accountIdOf(identity),
      ...(identity.acr ? { acr: identity.acr } : {}),
      amr: identity.amr,
      authTime: identity.authTime,
    };
    return { session, roles, login };
  }

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
      const { session, roles, login } = await startSession(identity, upstream);
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
        const target = chosen.config.idpInitiated;
        if (!target.enabled || !target.app || !target.initiateLoginUri) {
          throw new FederationError('ERR_SAML_UNSOLICITED', 'this identity provider may not start sign-ins here; start from the application', 'unsolicited response (no InResponseTo)');
        }
        if (!(await store.set(samlAssertionKey(idp, result.assertionId), '1', { ttl: Math.max(1, result.expiresAt - now()), ifAbsent: true }))) {
          throw new FederationError('ERR_SAML_REPLAY', 'this sign-in response was already used; start again from the application', 'assertion id replay (IdP-initiated)');
        }
        const { session, roles, login } = await startSession(result.identity, result.upstream);
        const { identity } = result;
        const binding = randomBytes(24).toString('base64url');
        await store.set(idpInitiatedKey(sha256(binding)), JSON.stringify({ login, clientId: target.app }), { ttl: TX_TTL });
        await audit.record('federation.idp_initiated_login', { idp, protocol: 'saml', app: target.app, sub: session.accountId, sid: session.sid, roles, groupsComplete: identity.groupsComplete });
        const location = new URL(target.initiateLoginUri);
        location.searchParams.set('iss', config.issuer);
        return {
          idpInitiated: {
            location: location.href,
            setCookie: cookies.serialize(IDP_INITIATED_COOKIE, binding, { path: `${base}/interaction`, maxAge: TX_TTL, secure }),
          },
        };
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
      const { identity } = result;
      const { session, roles, login } = await startSession(identity, result.upstream);
      await store.set(loginKey(tx.interactionUid), JSON.stringify(login), { ttl: TX_TTL });
      await audit.record('federation.login_succeeded', { idp, protocol: 'saml', sub: session.accountId, sid: session.sid, roles, groupsComplete: identity.groupsComplete });
      return { interactionUid: tx.interactionUid, login };
    },

    async samlLogout(input) {
      const chosen = connector(input.idp);
      if (!isSamlConnector(chosen)) throw new FederationError('ERR_SAML_LOGOUT_INVALID', 'invalid SAML logout message: this identity provider does not use SAML');
      const { idp } = input;
      const message = await chosen.openLogout(input.binding === 'redirect'
        ? { binding: 'redirect', query: input.query }
        : { binding: 'post', message: input.message, ...(input.relayState !== undefined ? { relayState: input.relayState } : {}) });
      if (message.kind === 'response') {
        // The answer to the LogoutRequest this browser carried to the IdP (SAML core §3.2.2:
        // InResponseTo), checked before it is taken, so a stray response cannot burn it.
        const key = message.inResponseTo ? samlLogoutRequestKey(message.inResponseTo) : undefined;
        if (key && (await store.get(`${key}:answered`))) {
          throw new FederationError('ERR_SAML_REPLAY', 'invalid SAML logout message: it was already used (replay)', 'LogoutRequest already answered');
        }
        const raw = key ? await store.get(key) : null;
        if (!key || !raw) {
          throw new FederationError('ERR_SAML_IN_RESPONSE_TO', 'invalid SAML logout message: it answers no sign-out in progress here (unknown, expired or already used)', `InResponseTo ${message.inResponseTo ?? 'absent'}`);
        }
        const pending = JSON.parse(raw) as PendingLogout;
        if (pending.idp !== idp) {
          throw new FederationError('ERR_SAML_IN_RESPONSE_TO', 'invalid SAML logout message: it answers a sign-out sent to another identity provider', `request for ${pending.idp} at ${idp} SLO`);
        }
        const binding = cookies.read(input.cookieHeader, SAML_BROWSER_COOKIE);
        if (!binding || sha256(binding) !== pending.browser) {
          throw new FederationError('ERR_FEDERATION_STATE', 'invalid SAML logout message: this sign-out was started in another browser', 'browser binding mismatch');
        }
        if (message.relayState !== pending.relayState) {
          throw new FederationError('ERR_FEDERATION_STATE', 'invalid SAML logout message: it does not belong to the sign-out in progress (RelayState)', 'RelayState mismatch');
        }
        if (!(await store.take(key))) throw new FederationError('ERR_SAML_REPLAY', 'invalid SAML logout message: it was already used (replay)', 'LogoutRequest already answered');
        await store.set(`${key}:answered`, '1', { ttl: TX_TTL });
        if (!message.success) {
          throw new FederationError('ERR_FEDERATION_IDP_ERROR',
            `you are signed out of the gateway, but the identity provider "${idp}" reports that it could not end your session everywhere; close the browser to be sure`,
            `status ${message.status ?? 'absent'}`);
        }
        await audit.record('session.upstream_logout_confirmed', { idp, protocol: 'saml' });
        return { kind: 'response', ended: 0, relayState: pending.relayState };
      }
      // A logout request is acted on once (its ID, for as long as it could be valid).
      const ttl = Math.max(60, (message.notOnOrAfter ?? now() + 600) - now() + chosen.config.clockSkew);
      if (!(await store.set(`saml:logout:${idp}:${sha256(message.id)}`, '1', { ttl, ifAbsent: true }))) {
        throw new FederationError('ERR_SAML_REPLAY', 'invalid SAML logout message: it was already used (replay)');
      }
      if (!message.nameId) throw new FederationError('ERR_SAML_LOGOUT_INVALID', 'invalid SAML logout message: it names no NameID');
      // The sessions of this NameID, narrowed to the named SessionIndexes when there are any.
      const sids = new Set<string>();
      if (message.sessionIndexes.length > 0) {
        for (const index of message.sessionIndexes) {
          for (const sid of await sessions.findByUpstream(idp, index)) {
            const session = await sessions.get(sid);
            if (session?.upstream.sub === message.nameId) sids.add(sid);
          }
        }
      } else {
        for (const sid of await sessions.findByUpstreamSubject(idp, message.nameId)) sids.add(sid);
      }
      let ended = 0;
      for (const sid of sids) if (await sessions.end(sid, 'upstream_logout')) ended += 1;
      await audit.record('session.upstream_logout', { idp, protocol: 'saml', ended });
      const location = await chosen.logoutResponseUrl({ inResponseTo: message.id, success: true, ...(message.relayState !== undefined ? { relayState: message.relayState } : {}) });
      return { kind: 'request', ended, ...(location ? { location: location.href } : {}) };
    },

    async samlLogoutStart({ idp, token, cookieHeader }) {
      const chosen = connector(idp);
      if (!isSamlConnector(chosen)) throw new FederationError('ERR_SAML_LOGOUT_INVALID', 'invalid SAML logout message: this identity provider does not use SAML');
      const handoff = await chosen.takeLogoutHandoff(token);
      if (!handoff) throw new FederationError('ERR_FEDERATION_STATE', 'this sign-out has expired or was already completed', 'unknown or used logout hand-off');
      // The same browser binding as a SAML sign-in (cookie scoped to the SAML endpoints), set
      // again so that it lasts as long as the pending LogoutRequest.
      const binding = cookies.read(cookieHeader, SAML_BROWSER_COOKIE) ?? randomBytes(24).toString('base64url');
      const setCookie = cookies.serialize(SAML_BROWSER_COOKIE, binding, { path: `${base}/federation/saml`, maxAge: TX_TTL, secure, ...(secure ? { sameSite: 'None' as const } : {}) });
      const id = newMessageId();
      const location = await chosen.logoutRequestUrl({ id, upstream: handoff.upstream, relayState: handoff.state });
      if (!location) throw new FederationError('ERR_SAML_METADATA', `the metadata of "${idp}" no longer publishes a single logout service`);
      const pending: PendingLogout = { idp, browser: sha256(binding), relayState: handoff.state };
      await store.set(samlLogoutRequestKey(id), JSON.stringify(pending), { ttl: TX_TTL });
      return { location: location.href, setCookie };
    },

    async recordLogoutRefused({ idp, error, reqId }) {
      try {
        await audit.record('session.upstream_logout_refused', { ...(idp ? { idp } : {}), protocol: 'saml', errorCode: error.code, reason: error.detail ?? error.message, reqId });
      } catch (auditError) {
        logger.error({ reqId, reason: (auditError as Error).message }, 'audit entry for a refused logout could not be stored');
      }
    },

    clearIdpInitiatedCookie: `${IDP_INITIATED_COOKIE}=; Path=${base}/interaction; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}; Max-Age=0`,

    async takeIdpInitiatedLogin({ clientId, cookieHeader }) {
      const binding = cookies.read(cookieHeader, IDP_INITIATED_COOKIE);
      if (!binding) return undefined;
      const key = idpInitiatedKey(sha256(binding));
      const raw = await store.get(key);
      if (!raw) return undefined;
      const held = JSON.parse(raw) as { login: FederatedLogin; clientId: string };
      // Only the configured app may pick it up; any other app signs in the ordinary way.
      if (held.clientId !== clientId) return undefined;
      return (await store.take(key)) ? held.login : undefined;
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
