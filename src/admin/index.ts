// The admin API: bearer-authenticated (admin clients, agentgate:admin), mounted at /admin.
import express from 'express';
import type { Router } from 'express';

import type { AccessTokenVerifier } from '../authz/index.ts';
import type { Logger } from '../ops/index.ts';
import type { Policy } from '../policy/index.ts';
import { requireAdmin } from './auth.ts';
import { createExplainRouter } from './explain.ts';
import { createRevocationAdminRouter } from './revocation.ts';
import type { AdminRevocationDeps } from './revocation.ts';

export { explainInput, explainRequestSchema } from './explain.ts';
export type { ExplainRequest } from './explain.ts';
export { requireAdmin } from './auth.ts';
export { createAdminConsole } from './console.ts';
export type { AdminConsoleDeps } from './console.ts';
export { createSignInRecorder, idpHealth, lastSignInKey } from './idp-health.ts';
export type { IdpHealth, SignInRecorder } from './idp-health.ts';

export type { AdminRevocationDeps } from './revocation.ts';

export function createAdminRouter(deps: {
  issuer: string;
  tokens: AccessTokenVerifier;
  adminClients: readonly string[];
  policy: Policy;
  logger: Logger;
} & AdminRevocationDeps): Router {
  const router = express.Router();
  router.use(requireAdmin(deps));
  router.use(createExplainRouter(deps));
  router.use(createRevocationAdminRouter(deps));
  return router;
}
