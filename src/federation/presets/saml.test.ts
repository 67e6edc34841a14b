// SAML presets turning a (verified) assertion into the normalized identity: Entra group overage
// (groups.link) read from Microsoft Graph app-only, or groups marked incomplete when it cannot
// be; Google's capped groups attribute; Okta's name from first/last name; the key rules.
import { describe, expect, it } from 'vitest';

import { validateConfig } from '../../config/index.ts';
import type { SamlIdentityProviderConfig } from '../../config/index.ts';
import { createLogger } from '../../ops/index.ts';
import type { SamlAssertion } from '../saml/assertion.ts';
import { AZURE, NAMEID_PERSISTENT, samlPresetFor } from './saml.ts';

const TENANT = '11111111-2222-4333-8444-555555555555';
const OID = '0c0c0c0c-1111-4222-8333-444444444444';

function idpConfig(idp: Record<string, unknown>): SamlIdentityProviderConfig {
  return validateConfig({
    mode: 'development', issuer: 'http://127.0.0.1:1', store: { driver: 'memory' }, keys: { generate: true },
    identityProviders: [{ id: 'x', type: 'saml', metadata: { xml: '<x/>' }, ...idp }],
  }).identityProviders[0] as SamlIdentityProviderConfig;
}

const assertion = (attributes: Record<string, string[]>, nameId?: { value: string; format: string }): SamlAssertion => ({
  id: '_a', issuer: 'https://idp', confirmations: [], audienceRestrictions: [], attributes, authnInstant: 1_700_000_000,
  authnContextClassRef: 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport',
  ...(nameId ? { nameId: nameId.value, nameIdFormat: nameId.format } : {}),
});

function context(fetchImpl: typeof fetch = async () => { throw new TypeError('no network in this test'); }) {
  return { fetch: fetchImpl, now: () => 1_700_000_000, logger: createLogger({ level: 'silent' }) };
}

describe('azure-ad (SAML)', () => {
  const entra = (graph?: Record<string, unknown>) => idpConfig({ preset: 'azure-ad', tenant: TENANT, ...(graph ? { graph } : {}) });
  const overage = assertion({ [AZURE.tenantId]: [TENANT], [AZURE.objectId]: [OID], [AZURE.groupsLink]: [`https://graph.windows.net/${TENANT}/users/${OID}/getMemberObjects`] });

  it('resolves group overage (groups.link) through Microsoft Graph, app-only', async () => {
    const calls: string[] = [];
    const graphFetch: typeof fetch = async (input) => {
      const url = String(input);
      calls.push(url);
      if (url.endsWith('/oauth2/v2.0/token')) return Response.json({ access_token: 'graph-token', expires_in: 3600 });
      return Response.json({ value: [{ id: 'g1', displayName: 'Finance' }, { id: 'g2' }] });
    };
    const config = entra({ clientId: 'app', clientSecret: 'secret' });
    const identity = await samlPresetFor(config).identity(config, overage, context(graphFetch));
    expect(identity).toMatchObject({ subject: `${TENANT}:${OID}`, groupsComplete: true, groups: [{ idp: 'x', id: 'g1', name: 'Finance' }, { idp: 'x', id: 'g2' }] });
    expect(calls[0]).toBe(`https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/token`);
    expect(calls[1]).toContain(`https://graph.microsoft.com/v1.0/users/${OID}/transitiveMemberOf/microsoft.graph.group`);
  });

  it('marks groups incomplete when overage cannot be resolved (no Graph, or Graph refuses)', async () => {
    const none = entra();
    expect(await samlPresetFor(none).identity(none, overage, context())).toMatchObject({ groupsComplete: false, groups: [] });
    const refusing = entra({ clientId: 'app', clientSecret: 'wrong' });
    const denied: typeof fetch = async () => Response.json({ error: 'invalid_client' }, { status: 401 });
    expect(await samlPresetFor(refusing).identity(refusing, overage, context(denied))).toMatchObject({ groupsComplete: false });
  });

  it('refuses another tenant and a missing objectidentifier', async () => {
    const config = entra();
    await expect(samlPresetFor(config).identity(config, assertion({ [AZURE.tenantId]: ['other'], [AZURE.objectId]: [OID] }), context()))
      .rejects.toMatchObject({ code: 'ERR_FEDERATION_TENANT_NOT_ALLOWED' });
    await expect(samlPresetFor(config).identity(config, assertion({ [AZURE.tenantId]: [TENANT] }), context()))
      .rejects.toMatchObject({ code: 'ERR_SAML_SUBJECT' });
  });
});

describe('google-workspace (SAML)', () => {
  const config = idpConfig({ preset: 'google-workspace', hostedDomains: ['example.org'] });
  const person = (groups: string[]) => assertion({ email: ['dave@example.org'], groups }, { value: 'g-1', format: NAMEID_PERSISTENT });

  it('takes the mapped groups, and counts a list at Google\'s cap (75) as possibly cut', async () => {
    const few = await samlPresetFor(config).identity(config, person(['a@example.org']), context());
    expect(few).toMatchObject({ subject: 'g-1', groupsComplete: true, groups: [{ id: 'a@example.org' }], attributes: { hd: 'example.org' } });
    const many = await samlPresetFor(config).identity(config, person(Array.from({ length: 75 }, (_, i) => `g${i}@example.org`)), context());
    expect(many.groupsComplete).toBe(false);
  });
});

describe('okta and generic (SAML)', () => {
  it('builds the name from firstName/lastName and keys by the persistent NameID', async () => {
    const config = idpConfig({ preset: 'okta' });
    const identity = await samlPresetFor(config).identity(config, assertion({ email: ['a@acme.com'], firstName: ['Alice'], lastName: ['Example'], groups: ['Finance'] }, { value: '00u1', format: NAMEID_PERSISTENT }), context());
    expect(identity).toMatchObject({ idp: 'x', subject: '00u1', name: 'Alice Example', email: 'a@acme.com', amr: ['pwd'], authTime: 1_700_000_000 });
  });

  it('never keys by an email NameID; an immutable attribute may be configured instead', async () => {
    const byNameId = idpConfig({ preset: 'generic' });
    const emailNameId = assertion({ employeeNumber: ['E42'] }, { value: 'a@acme.com', format: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress' });
    await expect(samlPresetFor(byNameId).identity(byNameId, emailNameId, context())).rejects.toMatchObject({ code: 'ERR_SAML_SUBJECT' });
    const byAttribute = idpConfig({ preset: 'generic', attributes: { subject: 'employeeNumber' } });
    expect(await samlPresetFor(byAttribute).identity(byAttribute, emailNameId, context())).toMatchObject({ subject: 'E42', email: 'a@acme.com' });
  });
});
