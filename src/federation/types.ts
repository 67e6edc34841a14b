// The contract between the federation routes and a connector (one per configured IdP).
import type { FederatedIdentity } from '../identity/index.ts';
import type { UpstreamSession } from '../session/index.ts';

export interface SignInTransaction {
  idp: string;
  /** The oidc-provider interaction this sign-in completes. */
  interactionUid: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  /** SAML: the AuthnRequest ID (the response's InResponseTo). */
  requestId?: string;
  /** Hash of the browser-binding cookie value: the callback must come from the same browser. */
  browser: string;
  maxAge?: number;
  /** Seconds since the epoch. */
  createdAt: number;
}

export interface CompletedSignIn {
  identity: FederatedIdentity;
  upstream: { sid?: string; sub?: string; idToken?: string };
}

export interface LogoutTokenClaims {
  sid?: string;
  sub?: string;
  jti: string;
}

export interface ProbeCheck {
  name: string;
  ok: boolean;
  message: string;
}

export interface Connector {
  readonly type: 'oidc' | 'saml';
  readonly id: string;
  readonly displayName: string;
  readonly preset: string;
  readonly domains: readonly string[];
  /** The authorization URL to send the browser to. */
  begin(tx: SignInTransaction, hints: { loginHint?: string; acrValues?: string; maxAge?: number }): Promise<URL>;
  /** Validates the authorization response and returns the normalized identity. */
  complete(callbackUrl: URL, tx: SignInTransaction): Promise<CompletedSignIn>;
  /** Validates an OIDC Back-Channel Logout 1.0 logout token (not its jti replay: the caller does that). */
  verifyLogoutToken(token: string): Promise<LogoutTokenClaims>;
  /** Where to send the browser to end the upstream session, if the IdP supports it. */
  endSessionUrl(input: { idToken?: string; postLogoutRedirectUri: string; state: string; upstream?: UpstreamSession }): Promise<URL | undefined>;
  /** Diagnostics for `agentgate idp test`. */
  probe(): Promise<ProbeCheck[]>;
  /**
   * The IdP's URLs a browser is sent to (authorization / single sign-on, logout) as far as known
   * now — from the discovery document or metadata in use, else the configured issuer or metadata
   * URL. The sign-in pages' CSP `form-action` lists their origins (a form's redirects count).
   */
  browserEndpoints(): string[];
}
