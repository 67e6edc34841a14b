// RFC 8707 resource indicators → RFC 9068 JWT access tokens. Only configured `resources` are
// valid targets; a client may target only the resources config lets it (agents: `audiences`,
// apps: `audiences`). A requested scope the token could not carry is refused with invalid_scope
// naming it, never silently dropped: an agent must know what it did not get.
import type { KoaContextWithOIDC, ResourceServer } from 'oidc-provider';

import type { Config } from '../config/index.ts';
import type { KeyRing } from '../keys/index.ts';
import { SERVICE_TOKEN_TTL } from '../revocation/index.ts';
import { ADMIN_SCOPE, adminAudience, REVOCATIONS_SCOPE, revocationsAudience } from './clients.ts';
import { InvalidScope, InvalidTarget, UnauthorizedClient } from './errors.ts';

export interface ResourceIndicatorHooks {
  defaultResource(ctx: KoaContextWithOIDC): string | undefined;
  getResourceServerInfo(ctx: KoaContextWithOIDC, resource: string, client: { clientId: string }): ResourceServer;
}

export function createResourceIndicators(config: Config, keyRing: KeyRing): ResourceIndicatorHooks {
  const resources = new Map(config.resources.map((res) => [res.id, res]));
  const agents = new Map(config.agents.map((agent) => [agent.clientId, agent]));
  const apps = new Map(config.apps.map((app) => [app.clientId, app]));
  const admins = new Set(config.admin.clients.map((client) => client.clientId));
  const adminResource = adminAudience(config.issuer);
  // The gateway's own APIs are resources only their clients may target, and only for their scope.
  const services = [
    { resource: adminResource, scope: ADMIN_SCOPE, clients: admins },
    {
      resource: revocationsAudience(config.issuer),
      scope: REVOCATIONS_SCOPE,
      clients: new Set(config.resources.flatMap((res) => (res.client ? [res.client.clientId] : []))),
    },
  ];

  function requestedScopes(ctx: KoaContextWithOIDC): string[] {
    return String(ctx.oidc.params?.scope ?? '').split(' ').filter(Boolean);
  }

  return {
    // An agent with exactly one audience gets it by default; otherwise it must say which.
    defaultResource(ctx) {
      const clientId = ctx.oidc.client?.clientId;
      const service = clientId ? services.find((s) => s.clients.has(clientId)) : undefined;
      if (service) return service.resource;
      const agent = clientId ? agents.get(clientId) : undefined;
      if (agent && agent.audiences.length === 1 && ctx.oidc.params?.grant_type === 'client_credentials') {
        return agent.audiences[0];
      }
      return undefined;
    },

    getResourceServerInfo(ctx, resource, client) {
      const service = services.find((s) => s.resource === resource || s.clients.has(client.clientId));
      if (service) {
        if (resource !== service.resource || !service.clients.has(client.clientId)) {
          throw new InvalidTarget(`client "${client.clientId}" may not request tokens for "${resource}"`);
        }
        for (const scope of requestedScopes(ctx)) {
          if (scope !== service.scope) throw new InvalidScope(`scope "${scope}" is not offered by resource "${resource}"`, scope);
        }
        return {
          scope: service.scope,
          audience: service.resource,
          accessTokenTTL: SERVICE_TOKEN_TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: keyRing.signingAlg } },
        };
      }
      const res = resources.get(resource);
      const agent = agents.get(client.clientId);
      const allowed = agent?.audiences ?? apps.get(client.clientId)?.audiences ?? [];
      if (!res) throw new InvalidTarget(`unknown resource "${resource}"`);
      if (agent?.disabled) throw new UnauthorizedClient(`agent "${agent.clientId}" is disabled`);
      if (!allowed.includes(resource)) {
        throw new InvalidTarget(`client "${client.clientId}" may not request tokens for "${resource}"`);
      }
      let ttl = res.tokenTtl;
      if (agent) {
        ttl = Math.min(ttl, agent.maxTokenTtl);
        if (ctx.oidc.params?.grant_type === 'client_credentials') {
          for (const scope of requestedScopes(ctx)) {
            if (!res.scopes.includes(scope)) {
              throw new InvalidScope(`scope "${scope}" is not offered by resource "${resource}"`, scope);
            }
            if (!agent.scopes.includes(scope)) {
              throw new InvalidScope(`scope "${scope}" is outside the scopes registered for agent "${agent.clientId}"`, scope);
            }
          }
        }
      }
      return {
        scope: res.scopes.join(' '),
        audience: res.id,
        accessTokenTTL: Math.max(1, Math.floor(ttl)),
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: keyRing.signingAlg } },
      };
    },
  };
}
