// Okta as a test peer: one authorization server, either a custom one
// (https://acme.okta.com/oauth2/default, endpoints /oauth2/default/v1/…) or the org authorization
// server (https://acme.okta.com, endpoints /oauth2/v1/…), with Okta's ID token claims: `sub`
// (00u…), `ver: 1`, `idp` (the org id, 00o…), `jti`, `amr`, `email`/`email_verified` (email
// scope), `name`/`preferred_username`/… (profile scope) and `groups` (group NAMES) only when the
// `groups` scope is requested.
import { randomBytes } from 'node:crypto';

import express from 'express';

import { hostOrigins } from './host.ts';
import type { PeerHost } from './host.ts';
import type { LoopbackInternet } from './internet.ts';
import { createOidcIssuer, digest } from './oidc-issuer.ts';
import type { OidcPeerHandle, PeerClient, PeerUser } from './oidc-issuer.ts';

export interface OktaUser extends PeerUser {
  /** Okta user id, `00u…` (default: derived from the username). */
  sub?: string;
  email: string;
  emailVerified?: boolean;
  name: string;
  givenName?: string;
  familyName?: string;
  /** Okta group names (the `groups` claim, with the `groups` scope). */
  groups?: string[];
}

export interface OktaPeerOptions {
  internet: LoopbackInternet;
  /** Default https://acme.okta.com/oauth2/default; https://acme.okta.com is the org authorization server. */
  issuer?: string;
  clients: PeerClient[];
  users?: OktaUser[];
  /** Org id for the `idp` claim (default derived from the host). */
  orgId?: string;
}

export interface OktaPeer extends OidcPeerHandle<OktaUser> {
  readonly origin: string;
  readonly host: PeerHost;
  /** Connection refused until start(). */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** An Okta-shaped id: a 3-character type prefix and 17 base62 characters. */
export function oktaId(prefix: '00u' | '00o' | '00g', ...seed: string[]): string {
  return prefix + [...digest(prefix, ...seed).subarray(0, 17)].map((byte) => BASE62[byte % 62]).join('');
}

export async function startOktaPeer(options: OktaPeerOptions): Promise<OktaPeer> {
  const issuer = (options.issuer ?? 'https://acme.okta.com/oauth2/default').replace(/\/$/, '');
  const { origin, pathname } = new URL(issuer);
  const orgServer = pathname === '/' || pathname === '';
  const v1 = orgServer ? '/oauth2/v1' : '/v1';
  const idp = options.orgId ?? oktaId('00o', new URL(issuer).host);
  const subOf = (user: OktaUser) => user.sub ?? oktaId('00u', user.username.toLowerCase());
  const acrValues = [...new Set((options.users ?? []).flatMap((user) => (user.acr ? [user.acr] : [])))];

  const okta = await createOidcIssuer<OktaUser>({
    internet: options.internet,
    issuer,
    routes: {
      authorization: `${v1}/authorize`,
      token: `${v1}/token`,
      jwks: `${v1}/keys`,
      userinfo: `${v1}/userinfo`,
      end_session: `${v1}/logout`,
      revocation: `${v1}/revoke`,
    },
    clients: options.clients,
    // Okta reports how the person signed in; a password-only sign-in is amr ["pwd"].
    users: (options.users ?? []).map((user) => ({ ...user, amr: user.amr ?? ['pwd'] })),
    scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
    claims: {
      openid: ['sub', 'ver', 'idp', 'jti', 'amr', 'acr', 'auth_time'],
      profile: ['name', 'preferred_username', 'given_name', 'family_name', 'locale', 'zoneinfo', 'updated_at'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    acrValues,
    brand: 'Okta',
    accountIdOf: subOf,
    claimsOf: (user, { scope }) => ({
      sub: subOf(user),
      ver: 1,
      idp,
      jti: `ID.${randomBytes(32).toString('base64url')}`,
      name: user.name,
      preferred_username: user.username,
      given_name: user.givenName,
      family_name: user.familyName,
      locale: 'en_US',
      zoneinfo: 'America/Los_Angeles',
      updated_at: 1_700_000_000,
      email: user.email,
      email_verified: user.emailVerified ?? true,
      ...(scope.split(' ').includes('groups') ? { groups: user.groups ?? [] } : {}),
    }),
  });

  // setUser keeps Okta's default amr for users added later.
  const setUser = (user: OktaUser) => okta.setUser({ ...user, amr: user.amr ?? ['pwd'] });

  const app = express();
  app.disable('x-powered-by');
  app.use(okta.mountPath || '/', okta.router);
  const host = await hostOrigins(options.internet, { [origin]: app });

  return {
    issuer,
    origin,
    host,
    key: okta.key,
    clients: okta.clients,
    setClient: okta.setClient,
    removeClient: okta.removeClient,
    users: okta.users,
    logoutDeliveries: okta.logoutDeliveries,
    setUser,
    removeUser: okta.removeUser,
    signLogoutToken: okta.signLogoutToken,
    backchannelLogout: okta.backchannelLogout,
    sessionSid: okta.sessionSid,
    subjectFor: okta.subjectFor,
    stop: host.stop,
    start: host.start,
    close: host.close,
  };
}
