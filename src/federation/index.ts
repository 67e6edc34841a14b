// The upstream face: OIDC and SAML 2.0 federation to Okta, Entra ID, Google Workspace and any
// OpenID Provider or SAML IdP.
export { createFederation, BROWSER_COOKIE } from './service.ts';
export type { FederatedLogin, Federation, FederationDeps } from './service.ts';
export { FederationError } from './errors.ts';
export { probeWithin, warmUpIdentityProviders } from './probe.ts';
export type { FederationErrorCode } from './errors.ts';
export { createFederationRouter } from './routes.ts';
export type { Connector, ProbeCheck } from './types.ts';
export { createOidcConnector } from './oidc/connector.ts';
export { createSamlConnector, isSamlConnector } from './saml/index.ts';
export type { SamlConnector } from './saml/index.ts';
