// The normalized identity every upstream sign-in becomes (DESIGN.md "Upstream face"): keyed by
// (idp, immutable subject), never by email. Vendor differences are resolved before this point
// (federation presets); everything downstream — roles, policy, tokens — reads only this shape.
import { z } from 'zod';

export const identityGroupSchema = z.strictObject({
  /** The IdP the group comes from; mappings match groups only within their own IdP. */
  idp: z.string().min(1),
  /** Stable id as the IdP sends it (Entra object id, Google group email, Okta group name). */
  id: z.string().min(1),
  /** Display name, when known. */
  name: z.string().optional(),
});

export const federatedIdentitySchema = z.strictObject({
  idp: z.string().min(1),
  /** Immutable subject at the IdP (Entra: tid:oid; Google/Okta: sub). */
  subject: z.string().min(1),
  email: z.string().optional(),
  emailVerified: z.boolean().optional(),
  name: z.string().optional(),
  groups: z.array(identityGroupSchema).default([]),
  /**
   * False when the IdP's group list is known to be partial (Entra overage not resolved, a
   * truncated list): group-based grants then do not apply (fail closed).
   */
  groupsComplete: z.boolean().default(true),
  amr: z.array(z.string()).default([]),
  acr: z.string().optional(),
  /** When the person authenticated at the IdP, seconds since the epoch. */
  authTime: z.number().int().nonnegative(),
  /** Other attributes policy may look at: tenant id (tid), hosted domain (hd), … */
  attributes: z.record(z.string(), z.union([z.string(), z.array(z.string())])).default({}),
});

export type IdentityGroup = z.output<typeof identityGroupSchema>;
export type FederatedIdentity = z.output<typeof federatedIdentitySchema>;
