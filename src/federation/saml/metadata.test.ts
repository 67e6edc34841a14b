// IdP metadata: every signing certificate kept (rollover), refreshed when stale, the last good
// copy kept when a refresh fails; DTDs refused; the redirect binding's inflate capped.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import { validateConfig } from '../../config/index.ts';
import type { SamlIdentityProviderConfig } from '../../config/index.ts';
import { createLogger } from '../../ops/index.ts';
import { createMetadataSource, parseIdpMetadata } from './metadata.ts';
import { MAX_MESSAGE_BYTES, inflateRedirectMessage } from './xml.ts';

const dir = mkdtempSync(join(tmpdir(), 'agentgate-md-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cert(name: string): string {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`), '-days', '30', '-subj', `/CN=${name}`], { stdio: 'ignore' });
  return readFileSync(join(dir, `${name}.crt`), 'utf8');
}
const body = (pem: string) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');
const metadata = (entityId: string, certs: string[]) => `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${entityId}">
<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
${certs.map((c) => `<md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${body(c)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`).join('')}
<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${body(certs[0]!)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/slo"/>
<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example.test/sso-post"/>
<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/sso"/>
</md:IDPSSODescriptor></md:EntityDescriptor>`;

const [a, b] = [cert('a'), cert('b')];

function samlConfig(url: string): SamlIdentityProviderConfig {
  const config = validateConfig({
    mode: 'development', issuer: 'http://127.0.0.1:1', store: { driver: 'memory' }, keys: { generate: true },
    identityProviders: [{ id: 'x', type: 'saml', preset: 'generic', metadata: { url, refresh: '1h' } }],
  });
  return config.identityProviders[0] as SamlIdentityProviderConfig;
}

describe('parseIdpMetadata', () => {
  it('keeps every signing certificate and picks the redirect SSO endpoint', () => {
    const parsed = parseIdpMetadata(metadata('https://idp.example.test', [a, b]));
    expect(parsed).toMatchObject({ entityId: 'https://idp.example.test', ssoUrl: 'https://idp.example.test/sso', slo: { redirect: 'https://idp.example.test/slo' } });
    expect(parsed.signingCertificates.map((c) => c.subject)).toEqual(['CN=a', 'CN=b']);
  });

  it('chooses among several entities by entityId, and refuses a DTD', () => {
    const two = `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">${metadata('https://one', [a])}${metadata('https://two', [b])}</md:EntitiesDescriptor>`;
    expect(() => parseIdpMetadata(two)).toThrow('the IdP metadata describes 2 identity providers; set metadata.entityId to choose one');
    expect(parseIdpMetadata(two, 'https://two').signingCertificates[0]!.subject).toBe('CN=b');
    expect(() => parseIdpMetadata(`<!DOCTYPE x [<!ENTITY e "x">]>${metadata('https://one', [a])}`)).toThrow('contains a DTD');
  });
});

describe('createMetadataSource', () => {
  it('refreshes when stale and keeps the last good copy when a refresh fails', async () => {
    let t = 1_000;
    let serve: () => Response = () => new Response(metadata('https://idp', [a]));
    let fetches = 0;
    const lines: Record<string, unknown>[] = [];
    const source = createMetadataSource(samlConfig('https://idp/metadata'), {
      fetch: async () => { fetches += 1; return serve(); },
      now: () => t,
      logger: createLogger({ level: 'info', destination: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>); } } }),
    });
    expect((await source.get()).signingCertificates.map((c) => c.subject)).toEqual(['CN=a']);
    await source.get();
    expect(fetches).toBe(1);
    // An hour later the IdP publishes its next certificate beside the current one.
    t += 3600;
    serve = () => new Response(metadata('https://idp', [a, b]));
    await source.get(); // served from the old copy while the refresh runs
    await new Promise((r) => setTimeout(r, 10));
    expect((await source.get()).signingCertificates.map((c) => c.subject)).toEqual(['CN=a', 'CN=b']);
    // Then the metadata endpoint breaks: the last good copy stays.
    t += 3600;
    serve = () => new Response('oops', { status: 500 });
    await source.get();
    await new Promise((r) => setTimeout(r, 10));
    expect((await source.get()).signingCertificates).toHaveLength(2);
    expect(source.status()).toEqual({ loadedAt: t - 3600, lastError: 'the IdP metadata at https://idp/metadata answered 500' });
    // Each load is a log line an operator can follow; the rollover names the certificate it added.
    const [fa, fb] = (await source.get()).signingCertificates.map((c) => c.fingerprint);
    expect(lines.map(({ msg, idp, source: from, signingCertificates, added, removed, reason }) => ({ msg, idp, from, signingCertificates, added, removed, reason }))).toEqual([
      { msg: 'SAML IdP metadata loaded', idp: 'x', from: 'https://idp/metadata', signingCertificates: 1, added: undefined, removed: undefined, reason: undefined },
      { msg: 'SAML IdP metadata refreshed: signing certificates changed', idp: 'x', from: 'https://idp/metadata', signingCertificates: 2, added: [fb], removed: [], reason: undefined },
      { msg: 'SAML IdP metadata refresh failed; keeping the last good copy', idp: 'x', from: undefined, signingCertificates: undefined, added: undefined, removed: undefined, reason: 'the IdP metadata at https://idp/metadata answered 500' },
    ]);
    expect(fa).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(lines.every((line) => typeof line.ms === 'number' || line.msg !== 'SAML IdP metadata loaded')).toBe(true);
  });

  it('fails with the reason when there is no good copy yet', async () => {
    const source = createMetadataSource(samlConfig('https://idp/metadata'), {
      fetch: async () => { throw new TypeError('fetch failed'); },
      now: () => 0,
      logger: createLogger({ level: 'silent' }),
    });
    await expect(source.get()).rejects.toThrow('the IdP metadata at https://idp/metadata could not be fetched');
  });
});

describe('inflateRedirectMessage', () => {
  it('inflates within the cap and refuses a deflate bomb', () => {
    const small = deflateRawSync(Buffer.from('<x/>')).toString('base64');
    expect(inflateRedirectMessage(small, 'message')).toBe('<x/>');
    const bomb = deflateRawSync(Buffer.alloc(MAX_MESSAGE_BYTES * 40, 0x20)).toString('base64');
    expect(bomb.length).toBeLessThan(20_000);
    expect(() => inflateRedirectMessage(bomb, 'message')).toThrow('the message inflates to more than the gateway accepts');
  });
});
