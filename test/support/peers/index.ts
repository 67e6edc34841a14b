// Real IdP peers for federation tests, on a loopback internet: Okta, Entra ID (with Microsoft
// Graph) and Google (with service accounts and the Directory API), a browser that signs in
// through them, and openid-client helpers for driving a peer directly.
export * from './internet.ts';
export * from './host.ts';
export * from './oidc-issuer.ts';
export * from './browser.ts';
export * from './okta.ts';
export * from './entra.ts';
export * from './google.ts';
export * from './relying-party.ts';
