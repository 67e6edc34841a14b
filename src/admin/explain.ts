// POST /admin/explain — "what would agent X get for person Y": the policy decision with its
// trace, for a hypothetical request, without a live sign-in (issue 3). Read-only.
import express from 'express';
import type { Router } from 'express';
import { z } from 'zod';

import { federatedIdentitySchema } from '../identity/index.ts';
import type { Logger } from '../ops/index.ts';
import { decisionToJson } from '../policy/index.ts';
import type { Policy } from '../policy/index.ts';
import { OAuthError } from '../http/index.ts';

const scopeList = z.union([z.string(), z.array(z.string())])
  .transform((value) => (Array.isArray(value) ? value : value.split(' ').filter(Boolean)));

export const explainRequestSchema = z.strictObject({
  identity: federatedIdentitySchema,
  agent: z.string().min(1),
  /** Space-separated string or list; omit to see the agent's defaults. */
  scope: scopeList.optional(),
  audience: z.string().min(1).optional(),
  subjectToken: z.strictObject({
    scopes: scopeList,
    actors: z.array(z.string().min(1)).default([]),
    expiresAt: z.number().int(),
  }).optional(),
  sessionExpiresAt: z.number().int().optional(),
  dpop: z.boolean().optional(),
  /** Seconds since the epoch; defaults to now. */
  now: z.number().int().optional(),
  /** List every role mapping in the trace, not only those that could apply. */
  all: z.boolean().default(false),
});

export type ExplainRequest = z.output<typeof explainRequestSchema>;

export function explainInput(body: ExplainRequest, now: number) {
  return {
    identity: body.identity,
    agent: body.agent,
    ...(body.scope !== undefined ? { scopes: body.scope } : {}),
    ...(body.audience !== undefined ? { audience: body.audience } : {}),
    ...(body.subjectToken ? { subjectToken: body.subjectToken } : {}),
    ...(body.sessionExpiresAt !== undefined ? { sessionExpiresAt: body.sessionExpiresAt } : {}),
    ...(body.dpop !== undefined ? { dpop: body.dpop } : {}),
    now: body.now ?? now,
    explainAll: body.all,
  };
}

export function createExplainRouter(deps: { policy: Policy; logger: Logger; now?: () => number }): Router {
  const router = express.Router();
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  router.post('/explain', express.json({ limit: '64kb' }), (req, res) => {
    const parsed = explainRequestSchema.safeParse(req.body ?? {});
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      const where = first?.path.length ? `${first.path.join('.')}: ` : '';
      throw new OAuthError(400, 'invalid_request', `${where}${first?.message ?? 'invalid body'}`);
    }
    const decision = deps.policy.decide(explainInput(parsed.data, now()));
    deps.logger.info({ adminClient: res.locals.adminClient, agent: parsed.data.agent, outcome: decision.outcome }, 'policy explained');
    res.set('Cache-Control', 'no-store').json(decisionToJson(decision));
  });
  return router;
}
