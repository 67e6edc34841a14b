// The built-in demo identity provider (development mode only, `demoIdp.enabled`): an in-process
// OpenID Provider (oidc-provider, OIDC Core 1.0 code flow + PKCE) mounted at `{issuer}/demo-idp`,
// with a handful of configured people and a sign-in page that lists them. The gateway federates
// it through the ordinary OIDC connector over real HTTP (discovery, authorization, token, JWKS),
// exactly as it federates Okta or Entra ID; only the people and the one-click sign-in are fake.
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';
import Provider from 'oidc-provider';
import type { Adapter, AdapterPayload, Configuration } from 'oidc-provider';

import type { Config, DemoPersonConfig, OidcIdentityProviderConfig } from '../config/index.ts';
import { DEMO_IDP_PATH } from '../config/index.ts';
import { escapeHtml, page } from '../pages/index.ts';

export interface DemoIdp {
  readonly issuer: string;
  /** Mount at `{issuer path}/demo-idp`. */
  readonly router: Router;
}

type Handler = (req: Request, res: Response) => Promise<void>;
const wrap = (fn: Handler) => (req: Request, res: Response, next: NextFunction) => { fn(req, res).catch(next); };

/** One process, one provider: records live in a Map with their expiry (oidc-provider's adapter contract). */
function memoryAdapter() {
  const records = new Map<string, { payload: AdapterPayload; expiresAt: number | undefined }>();
  const live = (key: string) => {
    const record = records.get(key);
    if (record?.expiresAt !== undefined && record.expiresAt <= Date.now()) {
      records.delete(key);
      return undefined;
    }
    return record;
  };
  return (model: string): Adapter => ({
    async upsert(id, payload, expiresIn) {
      records.set(`${model}:${id}`, { payload: structuredClone(payload), expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
    },
    async find(id) {
      const record = live(`${model}:${id}`);
      return record ? structuredClone(record.payload) : undefined;
    },
    async findByUid(uid) {
      for (const [key, record] of records) if (key.startsWith(`${model}:`) && record.payload.uid === uid && live(key)) return structuredClone(record.payload);
      return undefined;
    },
    async findByUserCode() {
      return undefined;
    },
    async consume(id) {
      const record = live(`${model}:${id}`);
      if (record) record.payload.consumed = Math.floor(Date.now() / 1000);
    },
    async destroy(id) {
      records.delete(`${model}:${id}`);
    },
    async revokeByGrantId(grantId) {
      for (const [key, record] of records) if (record.payload.grantId === grantId) records.delete(key);
    },
  });
}

/** The identity provider entry config loading made for the demo IdP (see src/config/load.ts). */
export function demoIdpConnectorConfig(config: Config): OidcIdentityProviderConfig | undefined {
  const found = config.identityProviders.find((idp) => idp.id === config.demoIdp.id);
  return found?.type === 'oidc' && found.preset === 'generic' ? found : undefined;
}

export function createDemoIdp(config: Config): DemoIdp {
  const connector = demoIdpConnectorConfig(config);
  if (!config.demoIdp.enabled || !connector || config.mode !== 'development') {
    throw new TypeError('createDemoIdp: demoIdp.enabled in development mode is required');
  }
  const issuer = `${config.issuer}${DEMO_IDP_PATH}`;
  const people = new Map(config.demoIdp.people.map((person) => [person.username, person]));
  // RS256: what OIDC Core requires every OP to support, and openid-client's default.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'demo-idp', use: 'sig', alg: 'RS256' };

  const configuration: Configuration = {
    adapter: memoryAdapter(),
    jwks: { keys: [jwk] } as Configuration['jwks'],
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      // The gateway's own oidc-provider shares this origin: other cookie names.
      names: { session: 'demoidp_session', interaction: 'demoidp_interaction', resume: 'demoidp_resume' },
    },
    clients: [{
      client_id: connector.clientId,
      client_secret: connector.clientSecret,
      redirect_uris: [`${config.issuer}/federation/oidc/${connector.id}/callback`],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: connector.clientAuthMethod,
      id_token_signed_response_alg: 'RS256',
    }],
    pkce: { required: () => true },
    responseTypes: ['code'],
    scopes: ['openid', 'email', 'profile', 'groups'],
    // acr/amr/auth_time with openid, as Okta releases them: the gateway's step-up rules read them.
    claims: { sid: null, openid: ['sub', 'acr', 'amr', 'auth_time'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    // The acr values the demo people report (oidc-provider releases only advertised ones).
    acrValues: [...new Set(config.demoIdp.people.flatMap((person) => (person.acr ? [person.acr] : [])))],
    // Scope-granted claims in the ID token too (the connector reads the ID token).
    conformIdTokenClaims: false,
    enabledJWA: { idTokenSigningAlgValues: ['RS256'] },
    features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: false } },
    findAccount: async (_ctx, accountId) => {
      const person = people.get(accountId);
      if (!person) return undefined;
      return {
        accountId,
        // How the person "signed in" (a click): amr pwd, and the acr configured for them.
        claims: async () => ({
          sub: accountId, email: person.email, email_verified: true, name: person.name, groups: person.groups,
          amr: ['pwd'], ...(person.acr ? { acr: person.acr } : {}),
        }),
      };
    },
    interactions: { url: (_ctx, interaction) => `${new URL(issuer).pathname}/interaction/${interaction.uid}` },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
  };
  const provider = new Provider(issuer, configuration);

  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '4kb' });

  router.get('/interaction/:uid', wrap(async (req, res) => {
    const { uid, prompt, params, session } = await provider.interactionDetails(req, res);
    if (prompt.name !== 'login') {
      // Consent is implicit at the demo IdP: the gateway is its only client.
      const grant = new provider.Grant({ accountId: session?.accountId, clientId: String(params.client_id) });
      grant.addOIDCScope(String(params.scope ?? 'openid'));
      await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
      return;
    }
    res.type('html').set('Cache-Control', 'no-store').send(renderPeoplePage(`${req.baseUrl}/interaction/${encodeURIComponent(uid)}/login`, config.demoIdp.displayName, [...people.values()]));
  }));

  router.post('/interaction/:uid/login', form, wrap(async (req, res) => {
    const { prompt, params } = await provider.interactionDetails(req, res);
    const username = typeof req.body?.username === 'string' ? req.body.username : '';
    const person = people.get(username);
    if (prompt.name !== 'login' || !person) {
      res.status(400).type('html').send(page('Demo sign-in', '<h1>Demo sign-in</h1><p role="alert">Choose one of the demo people.</p>'));
      return;
    }
    const grant = new provider.Grant({ accountId: person.username, clientId: String(params.client_id) });
    grant.addOIDCScope(String(params.scope ?? 'openid'));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, {
      login: { accountId: person.username, amr: ['pwd'], ...(person.acr ? { acr: person.acr } : {}) },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
  }));

  const callback = provider.callback();
  router.use((req, res) => { callback(req, res); });
  return { issuer, router };
}

function renderPeoplePage(action: string, brand: string, people: readonly DemoPersonConfig[]): string {
  const buttons = people.map((person) => `<li><button type="submit" name="username" value="${escapeHtml(person.username)}">${escapeHtml(person.name)}</button>
<span class="note">${escapeHtml(person.email)} · groups: ${escapeHtml(person.groups.join(', ') || 'none')}</span></li>`).join('\n');
  return page(`Sign in to ${brand}`, `<h1>Sign in to ${escapeHtml(brand)}</h1>
<p class="note">A demo identity provider built into agentgate's development mode. Pick a person; there are no passwords.</p>
<form method="post" action="${escapeHtml(action)}">
<ul>
${buttons}
</ul>
</form>`);
}
