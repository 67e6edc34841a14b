// SAML 2.0 service provider toward enterprise IdPs (Okta, Entra ID, Google Workspace, any SAML IdP).
export { createSamlConnector, isSamlConnector } from './connector.ts';
export type { SamlConnector, ValidatedSamlResponse } from './connector.ts';
export { parseIdpMetadata } from './metadata.ts';
export type { IdpMetadata } from './metadata.ts';
