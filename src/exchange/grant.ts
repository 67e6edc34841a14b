// The token-exchange grant (RFC 8693), served by the token endpoint's front (src/authz/
// token-endpoint.ts), which has already parsed the form, refused duplicate parameters (except
// audience/resource, which may repeat, §2.1) and authenticated the agent (private_key_jwt,
// client_secret_basic/post) exactly as oidc-provider's token endpoint would.
// The handler is an ordered list of small named steps (STYLE.md), each refusing with the exact
// RFC error: the agent must be an agent; the parameters must make sense; a DPoP proof, if sent,
// must be valid and fresh; the audience is exactly one; the subject token is what it is
// (person's or agent's — decided by the token, not the request); an actor token must name the
// same agent; then the policy decides and the result is minted, audited, and answered.
import type Provider from 'oidc-provider';

import { CustomOIDCProviderError, InvalidDpopProof, InvalidRequest, InvalidTarget } from '../authz/index.ts';
import type { AccessTokenVerifier, LeanGrant, LeanGrantRequest, LeanGrantResponse } from '../authz/index.ts';
import type { AgentConfig, Config } from '../config/index.ts';
import type { ConsentService } from '../consent/index.ts';
import { DPOP_ALGORITHMS, DpopProofError, verifyDpopProof } from '../keys/index.ts';
import type { DpopProof, KeyRing } from '../keys/index.ts';
import type { Policy } from '../policy/index.ts';
import { agentDisabledKey } from '../revocation/index.ts';
import type { SessionService } from '../session/index.ts';
import { actorTokenIdentifies, TOKEN_TYPE } from './actor-token.ts';
import type { ActorTokenDeps } from './actor-token.ts';
import type { AuditLog } from './audit.ts';
import { resolveSubjectToken, SubjectTokenError } from './subject-token.ts';
import type { SubjectToken } from './subject-token.ts';
import { actFromChain, createAgentTokenSigner } from './tokens.ts';

/** How long a DPoP proof's jti is remembered (its iat window, as oidc-provider). */
const DPOP_WINDOW = 300;

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

export const parameters = [
  'subject_token', 'subject_token_type', 'actor_token', 'actor_token_type',
  'requested_token_type', 'audience', 'resource', 'scope',
] as const;

/** §2.1: audience and resource may appear more than once. */
export const allowedDuplicateParameters = ['audience', 'resource'] as const;

export interface TokenExchangeDeps {
  config: Config;
  provider: Provider;
  policy: Policy;
  sessions: SessionService;
  accessTokens: AccessTokenVerifier;
  keyRing: KeyRing;
  audit: AuditLog;
  /** The registered keys of private_key_jwt agents (their actor tokens are JWTs they sign). */
  keysFor: ActorTokenDeps['keysFor'];
  /** The person's approvals, for agents registered with `consent: required`. */
  consents?: ConsentService;
  /** Seconds since the epoch. */
  now?: () => number;
}

interface Exchange {
  agent: AgentConfig;
  dpop?: DpopProof;
  audience?: string;
  scopes?: string[];
  subject?: SubjectToken;
}

const list = (value: unknown): string[] =>
  (Array.isArray(value) ? value : value === undefined ? [] : [value]).filter((v): v is string => typeof v === 'string' && v.length > 0);

const refuse = (error: string, description: string) => new CustomOIDCProviderError(error, description);

export function createTokenExchange(deps: TokenExchangeDeps): LeanGrant {
  const { config, policy, audit } = deps;
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const agents = new Map(config.agents.map((a) => [a.clientId, a]));
  const apps = new Set(config.apps.map((a) => a.clientId));
  const signer = createAgentTokenSigner(config.issuer, deps.keyRing);

  function requireAgent(request: LeanGrantRequest): AgentConfig {
    const { clientId } = request.client;
    const agent = agents.get(clientId);
    if (!agent) throw refuse('unauthorized_client', `client "${clientId}" is not a registered agent; only agents exchange tokens`);
    return agent;
  }

  function validateParameters({ params: p }: LeanGrantRequest): void {
    if (typeof p.subject_token !== 'string' || !p.subject_token) throw new InvalidRequest("missing required parameter 'subject_token'");
    if (p.subject_token_type !== TOKEN_TYPE.accessToken) {
      throw new InvalidRequest(p.subject_token_type ? `unsupported subject_token_type (use ${TOKEN_TYPE.accessToken})` : "missing required parameter 'subject_token_type'");
    }
    if (p.requested_token_type !== undefined && p.requested_token_type !== TOKEN_TYPE.accessToken) {
      throw new InvalidRequest(`unsupported requested_token_type (this gateway issues ${TOKEN_TYPE.accessToken})`);
    }
    if ((p.actor_token === undefined) !== (p.actor_token_type === undefined)) {
      throw new InvalidRequest('actor_token and actor_token_type go together');
    }
  }

  async function checkDpop(request: LeanGrantRequest, exchange: Exchange): Promise<void> {
    if (!request.dpop) return;
    let proof: DpopProof;
    try {
      proof = verifyDpopProof(request.dpop, { method: request.method, url: request.url, now: now(), algorithms: DPOP_ALGORITHMS });
    } catch (error) {
      if (error instanceof DpopProofError) throw new InvalidDpopProof(error.message);
      throw error;
    }
    // Replay: the same registry oidc-provider's own grants use, so a proof is good once anywhere.
    if (!(await deps.provider.ReplayDetection.unique(exchange.agent.clientId, proof.jti, now() + DPOP_WINDOW))) {
      throw new InvalidDpopProof('DPoP proof JWT Replay detected');
    }
    exchange.dpop = proof;
  }

  function resolveAudience({ params: p }: LeanGrantRequest, exchange: Exchange): void {
    const audiences = [...new Set(list(p.audience))];
    const resources = [...new Set(list(p.resource))];
    if (audiences.length > 0 && resources.length > 0 && (audiences.length !== 1 || resources.length !== 1 || audiences[0] !== resources[0])) {
      throw new InvalidTarget('resource and audience must name the same single target');
    }
    const targets = audiences.length > 0 ? audiences : resources;
    if (targets.length > 1) throw new InvalidTarget(`a token has exactly one audience; ${targets.length} were requested`);
    if (targets[0] !== undefined) exchange.audience = targets[0];
    if (typeof p.scope === 'string') exchange.scopes = p.scope.split(' ').filter(Boolean);
  }

  /** The subject token, and (in the same store round trip) whether the agent is switched off. */
  async function resolveSubject({ params }: LeanGrantRequest, exchange: Exchange): Promise<void> {
    let disabledAt: string | null | undefined;
    try {
      const { subject, also } = await resolveSubjectToken(String(params.subject_token), {
        provider: deps.provider, accessTokens: deps.accessTokens, sessions: deps.sessions, apps,
      }, [agentDisabledKey(exchange.agent.clientId)]);
      exchange.subject = subject;
      disabledAt = also[0];
    } catch (error) {
      if (error instanceof SubjectTokenError) throw refuse('invalid_grant', error.message);
      throw error;
    }
    // The kill switch (src/revocation): as client_credentials answers a disabled agent.
    if (disabledAt != null) throw refuse('unauthorized_client', `agent "${exchange.agent.clientId}" is disabled`);
  }

  async function checkActor({ params: p }: LeanGrantRequest, exchange: Exchange): Promise<void> {
    if (p.actor_token === undefined) return;
    const ok = await actorTokenIdentifies(exchange.agent, String(p.actor_token), String(p.actor_token_type), {
      issuer: config.issuer, accessTokens: deps.accessTokens, keysFor: deps.keysFor,
    });
    if (!ok) throw new InvalidRequest(`actor_token does not identify the authenticated agent "${exchange.agent.clientId}"`);
  }

  /**
   * A refusal before the policy is asked (parameters, DPoP proof, target, subject or actor token)
   * is an exchange decision too: audited like the policy's own refusals, with what is known so far.
   */
  async function auditRefusal({ params: p }: LeanGrantRequest, exchange: Exchange, error: unknown): Promise<void> {
    const { error: code, error_description: description, status } = error as { error?: unknown; error_description?: unknown; status?: unknown };
    // Only OAuth refusals; a store outage (5xx) is no decision and must not be masked.
    if (typeof code !== 'string' || typeof status !== 'number' || status >= 500) return;
    const { subject } = exchange;
    await audit.record({
      event: 'token.exchange_refused', time: now(), agent: exchange.agent.clientId,
      actors: [exchange.agent.clientId, ...(subject?.actors ?? [])],
      requested: exchange.scopes ?? (typeof p.scope === 'string' ? p.scope.split(' ').filter(Boolean) : []),
      granted: [], outcome: 'deny', error: code, reasons: [typeof description === 'string' ? description : code],
      ...(exchange.audience !== undefined ? { audience: exchange.audience } : {}),
      ...(subject ? { sub: subject.session.accountId, sid: subject.session.sid } : {}),
    });
  }

  async function handle(request: LeanGrantRequest): Promise<LeanGrantResponse> {
    const exchange: Exchange = { agent: requireAgent(request) };
    try {
      validateParameters(request);
      await checkDpop(request, exchange);
      resolveAudience(request, exchange);
      await resolveSubject(request, exchange);
      await checkActor(request, exchange);
    } catch (error) {
      await auditRefusal(request, exchange, error);
      throw error;
    }

    const subject = exchange.subject!;
    const t = now();
    const decision = policy.decide({
      identity: subject.session.identity,
      roles: subject.session.roles,
      agent: exchange.agent.clientId,
      ...(exchange.scopes !== undefined ? { scopes: exchange.scopes } : {}),
      ...(exchange.audience !== undefined ? { audience: exchange.audience } : {}),
      subjectToken: { scopes: subject.scopes, actors: subject.actors, expiresAt: subject.expiresAt },
      // An agent's token never outlives the session, idle timeout included (the exchange itself
      // is activity: touched below when granted).
      sessionExpiresAt: deps.sessions.endsAt(subject.session),
      dpop: Boolean(exchange.dpop),
      now: t,
    });
    const base = {
      time: t, sub: subject.session.accountId, agent: exchange.agent.clientId,
      actors: decision.outcome === 'grant' ? decision.actors : [exchange.agent.clientId, ...subject.actors],
      requested: decision.trace.scopes?.requested ?? exchange.scopes ?? [],
      sid: subject.session.sid,
    };

    if (decision.outcome !== 'grant') {
      await audit.record({
        ...base, event: 'token.exchange_refused', granted: [], outcome: decision.outcome, error: decision.error,
        ...(decision.trace.audience ? { audience: decision.trace.audience.id } : {}),
        reasons: [decision.description],
      });
      if (decision.outcome === 'deny') throw refuse(decision.error, decision.description);
      // RFC 9470 §3: tell the client what sign-in would satisfy the request.
      return {
        status: 400,
        body: {
          error: decision.error,
          error_description: decision.description,
          ...(decision.acrValues ? { acr_values: decision.acrValues.join(' ') } : {}),
          ...(decision.maxAge !== undefined ? { max_age: decision.maxAge } : {}),
        },
      };
    }

    // Consent (issue 9): an agent with `consent: required` acts only for a person who approved
    // exactly this scope set at this resource. The exchange cannot show a page (RFC 8693 has no
    // user interaction): it answers where the person decides.
    if (exchange.agent.consent === 'required') {
      if (!deps.consents) throw new TypeError('createTokenExchange: consents is required when an agent has consent: required');
      const consentSubject = { accountId: subject.session.accountId, clientId: exchange.agent.clientId, audience: decision.audience, scopes: decision.scopes };
      const consent = await deps.consents.get(consentSubject);
      if (consent?.decision !== 'approved') {
        const denied = consent?.decision === 'denied';
        const error = denied ? 'access_denied' : 'consent_required';
        const description = denied
          ? `the person declined agent "${exchange.agent.clientId}" for ${decision.scopes.join(' ')} at ${decision.audience}; they can change their mind at consent_uri`
          : `the person has not yet approved agent "${exchange.agent.clientId}" for ${decision.scopes.join(' ')} at ${decision.audience}; send them to consent_uri, then retry`;
        await audit.record({ ...base, event: 'token.exchange_refused', granted: [], outcome: 'deny', error, audience: decision.audience, reasons: [description] });
        return { status: denied ? 403 : 400, body: { error, error_description: description, consent_uri: deps.consents.uri(consentSubject) } };
      }
    }

    const { identity } = subject.session;
    const { token, jti } = await signer.sign({
      sub: subject.session.accountId,
      aud: decision.audience,
      client_id: exchange.agent.clientId,
      scope: decision.scopes.join(' '),
      act: actFromChain(decision.actors)!,
      sid: subject.session.sid,
      ...(identity.acr ? { acr: identity.acr } : {}),
      auth_time: identity.authTime,
      roles: decision.roles,
      ...(exchange.dpop ? { cnf: { jkt: exchange.dpop.thumbprint } } : {}),
    }, decision.ttl, t);
    // The audit entry (the token is only answered once it is recorded), the session's activity
    // (written at most once a minute) and its list of agents: written together, one round trip.
    await Promise.all([
      audit.record({
        ...base, event: 'token.exchanged', granted: decision.scopes, outcome: 'grant', audience: decision.audience,
        reasons: decision.trace.scopes?.excluded.map((e) => e.reason) ?? [], jti,
      }),
      deps.sessions.touch(subject.session),
      deps.sessions.recordAgent(subject.session, {
        clientId: exchange.agent.clientId, scopes: decision.scopes, audience: decision.audience, lastUsedAt: t, expiresAt: t + decision.ttl,
      }),
    ]);
    return {
      status: 200,
      body: {
        access_token: token,
        issued_token_type: TOKEN_TYPE.accessToken,
        token_type: exchange.dpop ? 'DPoP' : 'Bearer',
        expires_in: decision.ttl,
        scope: decision.scopes.join(' '),
      },
    };
  }

  return { parameters, allowedDuplicates: allowedDuplicateParameters, handle };
}
