// The generic OIDC connector (openid-client v6), specialized per vendor by a preset.
// Authorization code + PKCE (S256), state and nonce bound to the browser by the caller's
// transaction, full ID-token validation by openid-client (iss, aud, azp, exp, iat, nonce, alg from
// discovery), RFC 9207 `iss` checked when the IdP advertises it, and a redirect URI per IdP so a
// response can only complete the IdP it was meant for (mix-up defence, RFC 9700 §4.4).
// ID-token signatures are verified against the JWKS (openid-client's non-repudiation checks);
// discovery and the JWKS are cached on the Configuration, the JWKS refetched on an unknown `kid`.
// Discovery is retried on failure and refreshed daily.
import { createRemoteJWKSet, customFetch as joseCustomFetch, decodeJwt, jwtVerify } from 'jose';
import * as client from 'openid-client';

import type { OidcIdentityProviderConfig } from '../../config/index.ts';
import type { Logger } from '../../ops/index.ts';
import { FederationError } from '../errors.ts';
import { presetFor } from '../presets/index.ts';
import type { IdTokenClaims, PresetContext } from '../presets/index.ts';
import type { Connector, LogoutTokenClaims, ProbeCheck } from '../types.ts';

export interface ConnectorDeps {
  /** Absolute callback URL of this IdP at the gateway. */
  redirectUri: string;
  fetch: typeof fetch;
  /** Seconds since the epoch. */
  now: () => number;
  logger: Logger;
  /** Development mode may talk to http IdPs on loopback (the demo IdP); production never. */
  allowInsecureLoopback: boolean;
}

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const DISCOVERY_TTL = 24 * 3600;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Turns whatever openid-client threw into a FederationError an admin can read. */
export function describeFailure(idp: string, error: unknown): FederationError {
  if (error instanceof FederationError) return error;
  if (error instanceof client.AuthorizationResponseError) {
    return new FederationError('ERR_FEDERATION_IDP_ERROR',
      `the identity provider "${idp}" refused the sign-in: ${error.error}${error.error_description ? ` (${error.error_description})` : ''}`);
  }
  if (error instanceof client.ResponseBodyError) {
    return new FederationError('ERR_FEDERATION_IDP_ERROR',
      `the identity provider "${idp}" refused the token request: ${error.error}${error.error_description ? ` (${error.error_description})` : ''}`);
  }
  // openid-client wraps the check that failed (oauth4webapi's error, whose `cause` names the
  // claim, header or expected values) in a ClientError with a generic message ("invalid response
  // encountered"): describe, and log, the wrapped one.
  const inner = error instanceof client.ClientError && error.cause instanceof Error ? error.cause : error;
  const e = inner as { code?: string; message?: string; name?: string; cause?: { claim?: string; code?: string; header?: { alg?: unknown }; expected?: unknown } };
  const code = (error as { code?: string }).code ?? e.code;
  const message = e.message ?? String(error);
  switch (code) {
    case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED':
      return new FederationError('ERR_FEDERATION_ID_TOKEN_INVALID', `the ID token from "${idp}" failed validation: unexpected ${e.cause?.claim ?? 'claim'}`, message, { cause: error });
    case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED':
      return new FederationError('ERR_FEDERATION_ID_TOKEN_INVALID', `the ID token from "${idp}" failed validation: ${e.cause?.claim === 'exp' ? 'it has expired' : 'its time claims are not valid now'}`, message, { cause: error });
    case 'OAUTH_INVALID_RESPONSE':
      if (message.includes('"state"')) return new FederationError('ERR_FEDERATION_STATE', 'this sign-in response does not belong to the sign-in in progress; start again from the application', message, { cause: error });
      if (message.includes('"iss"')) return new FederationError('ERR_FEDERATION_ID_TOKEN_INVALID', `the response claims to come from a different issuer than "${idp}" (mix-up defence, RFC 9207)`, message, { cause: error });
      if (message.includes('"alg"')) {
        const expected = [e.cause?.expected ?? []].flat().map(String).join(', ');
        return new FederationError('ERR_FEDERATION_ID_TOKEN_INVALID',
          `the ID token from "${idp}" is signed with an algorithm it does not publish ("${String(e.cause?.header?.alg)}"; expected ${expected || 'RS256'})`, message, { cause: error });
      }
      if (/signature/i.test(message)) return new FederationError('ERR_FEDERATION_ID_TOKEN_INVALID', `the ID token from "${idp}" is not signed by one of its published keys`, message, { cause: error });
      return new FederationError('ERR_FEDERATION_ID_TOKEN_INVALID', `the identity provider "${idp}" sent an invalid response`, message, { cause: error });
    case 'OAUTH_KEY_SELECTION_FAILED':
    case 'OAUTH_JWS_SIGNATURE_VERIFICATION_FAILED':
      return new FederationError('ERR_FEDERATION_ID_TOKEN_INVALID', `the ID token from "${idp}" is not signed by one of its published keys`, message, { cause: error });
    case 'OAUTH_TIMEOUT':
    case 'OAUTH_ABORT':
      return new FederationError('ERR_FEDERATION_IDP_UNREACHABLE', `the identity provider "${idp}" did not answer in time; try again shortly`, message, { cause: error });
    default:
      break;
  }
  if (e.name === 'TypeError' || e.name === 'AbortError' || e.name === 'TimeoutError' || e.cause?.code === 'ECONNREFUSED') {
    return new FederationError('ERR_FEDERATION_IDP_UNREACHABLE', `the identity provider "${idp}" could not be reached; try again shortly`, message, { cause: error });
  }
  if (/signature/i.test(message)) {
    return new FederationError('ERR_FEDERATION_ID_TOKEN_INVALID', `the ID token from "${idp}" is not signed by one of its published keys`, message, { cause: error });
  }
  return new FederationError('ERR_FEDERATION_ID_TOKEN_INVALID', `the sign-in response from "${idp}" could not be verified`, message, { cause: error });
}

export function createOidcConnector(config: OidcIdentityProviderConfig, deps: ConnectorDeps): Connector {
  const preset = presetFor(config);
  const context: PresetContext = { fetch: deps.fetch, now: deps.now, logger: deps.logger };
  const discoveryUrl = preset.discoveryUrl(config);
  // The document openid-client fetches (OIDC Discovery 1.0 §4), named when it cannot be read.
  const discoveryDocument = discoveryUrl.pathname.includes('/.well-known/')
    ? discoveryUrl
    : new URL(`${discoveryUrl.pathname.replace(/\/$/, '')}/.well-known/openid-configuration${discoveryUrl.search}`, discoveryUrl);
  const insecure = deps.allowInsecureLoopback && discoveryUrl.protocol === 'http:' && LOOPBACK.has(discoveryUrl.hostname);
  const fetchForClient: client.CustomFetch = (url, options) => deps.fetch(url, options as RequestInit);
  let discovered: { at: number; config: Promise<client.Configuration> } | undefined;
  let logoutKeys: ReturnType<typeof createRemoteJWKSet> | undefined;
  /** Where browsers go, from the last discovery (the issuer until then). */
  let endpoints: string[] = [discoveryUrl.href];

  function configuration(): Promise<client.Configuration> {
    if (!discovered || deps.now() - discovered.at > DISCOVERY_TTL) {
      const auth = config.clientAuthMethod === 'client_secret_basic'
        ? client.ClientSecretBasic(config.clientSecret)
        : client.ClientSecretPost(config.clientSecret);
      const pending = client.discovery(discoveryUrl, config.clientId, {
        client_secret: config.clientSecret,
        [client.clockTolerance]: config.clockTolerance,
      }, auth, {
        [client.customFetch]: fetchForClient,
        timeout: 10,
        ...(insecure ? { execute: [client.allowInsecureRequests] } : {}),
      }).then((server) => {
        // openid-client does not verify an ID token's signature by default (OIDC Core §3.1.3.7
        // step 6 lets TLS stand in for it); we do, against the IdP's JWKS, so a token the IdP did
        // not sign is refused even if something between us and its token endpoint forged it.
        client.enableNonRepudiationChecks(server);
        const { authorization_endpoint: authorize, end_session_endpoint: endSession } = server.serverMetadata();
        endpoints = [authorize, endSession].filter((url): url is string => typeof url === 'string');
        return server;
      });
      discovered = { at: deps.now(), config: pending };
      // A failed discovery is not cached: the next sign-in tries again.
      pending.catch(() => {
        if (discovered?.config === pending) discovered = undefined;
      });
    }
    return discovered.config.catch((error: unknown) => {
      throw describeFailure(config.id, error);
    });
  }

  return {
    type: 'oidc',
    id: config.id,
    displayName: config.displayName ?? config.id,
    preset: config.preset,
    domains: config.domains,
    browserEndpoints: () => endpoints,

    async begin(tx, hints) {
      const server = await configuration();
      const params: Record<string, string> = {
        redirect_uri: deps.redirectUri,
        response_type: 'code',
        scope: (config.scopes ?? preset.defaultScopes).join(' '),
        state: tx.state,
        nonce: tx.nonce,
        code_challenge: await client.calculatePKCECodeChallenge(tx.codeVerifier),
        code_challenge_method: 'S256',
        ...preset.authorizationParams(config, { ...(hints.loginHint ? { loginHint: hints.loginHint } : {}) }),
        ...config.authorizationParams,
        ...(hints.maxAge !== undefined ? { max_age: String(hints.maxAge) } : {}),
        ...(hints.acrValues ? { acr_values: hints.acrValues } : {}),
      };
      return client.buildAuthorizationUrl(server, params);
    },

    async complete(callbackUrl, tx) {
      try {
        const server = await configuration();
        const tokens = await client.authorizationCodeGrant(server, callbackUrl, {
          pkceCodeVerifier: tx.codeVerifier,
          expectedState: tx.state,
          expectedNonce: tx.nonce,
          idTokenExpected: true,
          ...(tx.maxAge !== undefined ? { maxAge: tx.maxAge } : {}),
        });
        const claims = tokens.claims() as IdTokenClaims | undefined;
        if (!claims) throw new FederationError('ERR_FEDERATION_ID_TOKEN_INVALID', `"${config.id}" returned no ID token`);
        const identity = await preset.identity(config, claims, context);
        return {
          identity,
          upstream: {
            ...(typeof claims.sid === 'string' ? { sid: claims.sid } : {}),
            sub: claims.sub,
            ...(tokens.id_token ? { idToken: tokens.id_token } : {}),
          },
        };
      } catch (error) {
        throw describeFailure(config.id, error);
      }
    },

    async verifyLogoutToken(token): Promise<LogoutTokenClaims> {
      const invalid = (why: string) => new FederationError('ERR_LOGOUT_TOKEN_INVALID', `invalid logout token: ${why}`);
      let server: client.Configuration;
      try {
        server = await configuration();
      } catch (error) {
        throw describeFailure(config.id, error);
      }
      const metadata = server.serverMetadata();
      if (!metadata.jwks_uri) throw invalid('the identity provider publishes no jwks_uri');
      logoutKeys ??= createRemoteJWKSet(new URL(metadata.jwks_uri), { [joseCustomFetch]: (url, options) => deps.fetch(url, options as RequestInit) });
      let unverified: Record<string, unknown>;
      try {
        unverified = decodeJwt(token);
      } catch {
        throw invalid('not a JWT');
      }
      const issuer = preset.expectedIssuer(config, metadata.issuer, unverified);
      let claims: Record<string, unknown>;
      try {
        ({ payload: claims } = await jwtVerify(token, logoutKeys, {
          issuer,
          audience: config.clientId,
          algorithms: metadata.id_token_signing_alg_values_supported?.filter((alg) => alg !== 'none') ?? ['RS256'],
          requiredClaims: ['iat', 'jti', 'events'],
          clockTolerance: config.clockTolerance,
          currentDate: new Date(deps.now() * 1000),
          maxTokenAge: '10m',
        }));
      } catch (error) {
        throw invalid((error as Error).message);
      }
      // OIDC Back-Channel Logout 1.0 §2.6.
      const events = claims.events as Record<string, unknown> | undefined;
      if (!events || typeof events !== 'object' || typeof events[BACKCHANNEL_EVENT] !== 'object' || events[BACKCHANNEL_EVENT] === null) {
        throw invalid(`the events claim lacks ${BACKCHANNEL_EVENT}`);
      }
      if ('nonce' in claims) throw invalid('a logout token must not contain a nonce');
      const sid = typeof claims.sid === 'string' ? claims.sid : undefined;
      const sub = typeof claims.sub === 'string' ? claims.sub : undefined;
      if (!sid && !sub) throw invalid('it names neither sid nor sub');
      return { jti: String(claims.jti), ...(sid ? { sid } : {}), ...(sub ? { sub } : {}) };
    },

    async endSessionUrl({ idToken, postLogoutRedirectUri, state }) {
      if (!config.upstreamLogout) return undefined;
      const server = await configuration();
      if (!server.serverMetadata().end_session_endpoint) return undefined;
      return client.buildEndSessionUrl(server, {
        post_logout_redirect_uri: postLogoutRedirectUri,
        state,
        ...(idToken ? { id_token_hint: idToken } : { client_id: config.clientId }),
      });
    },

    async probe() {
      const checks: ProbeCheck[] = [];
      let server: client.Configuration;
      try {
        server = await configuration();
      } catch (error) {
        return [{ name: 'discovery', ok: false, message: `${(error as Error).message} (${discoveryDocument.href})` }];
      }
      const metadata = server.serverMetadata();
      checks.push({ name: 'discovery', ok: true, message: `issuer ${metadata.issuer}` });
      const algs = metadata.id_token_signing_alg_values_supported ?? ['RS256'];
      checks.push({ name: 'id token algorithms', ok: !algs.includes('none') || algs.length > 1, message: algs.join(', ') });
      try {
        const res = await deps.fetch(metadata.jwks_uri ?? '', { signal: AbortSignal.timeout(5000) });
        const jwks = (await res.json()) as { keys?: unknown[] };
        checks.push({ name: 'jwks', ok: res.ok && Array.isArray(jwks.keys) && jwks.keys.length > 0, message: `${jwks.keys?.length ?? 0} signing key(s) at ${metadata.jwks_uri}` });
      } catch (error) {
        checks.push({ name: 'jwks', ok: false, message: `cannot read ${metadata.jwks_uri}: ${(error as Error).message}` });
      }
      checks.push({ name: 'redirect uri', ok: true, message: `register ${deps.redirectUri} as a redirect URI of client ${config.clientId} at the IdP` });
      checks.push(...(await preset.probe?.(config, context) ?? []));
      return checks;
    },
  };
}
