// Microsoft Graph: the groups of a person whose ID token overflowed (group overage: more groups
// than fit in a token, signalled by `_claim_names`/`_claim_sources` or `hasgroups`). App-only
// token by client credentials at the person's tenant, then transitiveMemberOf (nested groups
// included) paged through @odata.nextLink. The token never leaves the Graph origin.
import { FederationError } from '../errors.ts';

export interface GraphGroup {
  id: string;
  displayName?: string;
}

export interface GraphClientOptions {
  fetch: typeof fetch;
  /** Seconds since the epoch. */
  now: () => number;
  authority: string;
  clientId: string;
  clientSecret: string;
  baseUrl: string;
  pageSize: number;
  /** Safety bound on paging (999 per page ⇒ ~100k groups). */
  maxPages?: number;
}

export interface GraphClient {
  transitiveGroups(tenantId: string, objectId: string): Promise<GraphGroup[]>;
  /** Obtains an app-only token (diagnostics). */
  token(tenantId: string): Promise<string>;
}

const TIMEOUT_MS = 5000;

export function createGraphClient(options: GraphClientOptions): GraphClient {
  const origin = new URL(options.baseUrl).origin;
  const tokens = new Map<string, { value: string; expiresAt: number }>();

  async function token(tenantId: string): Promise<string> {
    const cached = tokens.get(tenantId);
    if (cached && cached.expiresAt > options.now() + 60) return cached.value;
    const res = await options.fetch(`${options.authority}/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: options.clientId,
        client_secret: options.clientSecret,
        scope: `${origin}/.default`,
      }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const body = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
    if (!res.ok || typeof body.access_token !== 'string') {
      throw new FederationError('ERR_FEDERATION_IDP_ERROR', `Microsoft Graph token request failed: ${body.error ?? res.status}`, body.error_description);
    }
    tokens.set(tenantId, { value: body.access_token, expiresAt: options.now() + (body.expires_in ?? 300) });
    return body.access_token;
  }

  return {
    token,
    async transitiveGroups(tenantId, objectId) {
      const bearer = await token(tenantId);
      const groups: GraphGroup[] = [];
      let url: string | undefined =
        `${origin}/v1.0/users/${encodeURIComponent(objectId)}/transitiveMemberOf/microsoft.graph.group?$select=id,displayName&$top=${options.pageSize}`;
      for (let page = 0; url; page += 1) {
        if (page >= (options.maxPages ?? 100)) {
          throw new FederationError('ERR_FEDERATION_IDP_ERROR', 'Microsoft Graph returned more pages of groups than allowed');
        }
        if (new URL(url).origin !== origin) {
          throw new FederationError('ERR_FEDERATION_IDP_ERROR', 'Microsoft Graph paging pointed outside the Graph origin');
        }
        const res = await options.fetch(url, {
          headers: { authorization: `Bearer ${bearer}`, accept: 'application/json' },
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
        const body = (await res.json().catch(() => ({}))) as {
          value?: { id?: unknown; displayName?: unknown }[];
          '@odata.nextLink'?: string;
          error?: { code?: string; message?: string };
        };
        if (!res.ok || !Array.isArray(body.value)) {
          throw new FederationError('ERR_FEDERATION_IDP_ERROR', `Microsoft Graph refused the group look-up: ${body.error?.code ?? res.status}`, body.error?.message);
        }
        for (const g of body.value) {
          if (typeof g.id === 'string') groups.push({ id: g.id, ...(typeof g.displayName === 'string' ? { displayName: g.displayName } : {}) });
        }
        url = body['@odata.nextLink'];
      }
      return groups;
    },
  };
}
