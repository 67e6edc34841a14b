// The normalized identity: its type and the schema that validates one given from outside
// (explain input, admin API).
export { federatedIdentitySchema, identityGroupSchema } from './identity.ts';
export type { FederatedIdentity, IdentityGroup } from './identity.ts';
