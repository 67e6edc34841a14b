// `agentgate idp test` for SAML identity providers: the metadata is read (file or URL), each
// signing certificate is listed with the days it has left (a rollover publishes two), and the
// entity id / ACS URL to register are printed; an unreachable metadata URL fails (exit 3).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from '../../src/cli/index.ts';
import { generateCertificate, pemBody } from '../support/peers/saml-idp.ts';

const ISSUER = 'https://sso.example.test';
let dir: string;
let configFile: string;

const metadataXml = (certs: string[]) => `<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example.test/saml">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="true">
${certs.map((c) => `    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${pemBody(c)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`).join('\n')}
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentgate-saml-idp-test-'));
  const current = await generateCertificate(dir, 'current', 'current', 10);
  const next = await generateCertificate(dir, 'next', 'next', 400);
  await writeFile(join(dir, 'idp.xml'), metadataXml([current.cert, next.cert]));
  configFile = join(dir, 'gateway.yaml');
  await writeFile(configFile, `mode: development
issuer: ${ISSUER}
store: { driver: memory }
keys: { generate: true }
identityProviders:
  - id: okta-saml
    type: saml
    preset: okta
    metadata: { file: ${join(dir, 'idp.xml')} }
  - id: down
    type: saml
    preset: generic
    metadata: { url: http://127.0.0.1:1/metadata }
`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function idpTest(...args: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runCli(['idp', 'test', ...args], {
    env: {}, stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line), serve: async () => 0, version: 'test',
  });
  return { code, stdout, stderr };
}

describe('agentgate idp test (SAML)', () => {
  it('reads the metadata, lists each signing certificate with its days left, and what to register', async () => {
    const res = await idpTest('--config', configFile, 'okta-saml');
    expect(res.code).toBe(3);
    expect(res.stdout[0]).toBe('okta-saml (okta)');
    expect(res.stdout[1]).toBe('  ✓ metadata: entityID https://idp.example.test/saml, single sign-on at https://idp.example.test/sso');
    expect(res.stdout[2]).toMatch(/^ {2}✓ signing certificate [0-9A-F:]{11}: CN=current valid for (9|10) more day\(s\) — renew it soon \(publish the next certificate in the IdP metadata\)$/);
    expect(res.stdout[3]).toMatch(/^ {2}✓ signing certificate [0-9A-F:]{11}: CN=next valid for (399|400) more day\(s\)$/);
    // The IdP wants signed requests and the gateway has no SP key: a failure an admin can fix.
    expect(res.stdout[4]).toBe('  ✗ request signing: the IdP wants signed AuthnRequests: set sp.signingKey and sp.signingCert');
    expect(res.stdout[5]).toBe(`  ✓ service provider: register entity id ${ISSUER}/federation/saml/okta-saml/metadata and ACS URL ${ISSUER}/federation/saml/okta-saml/acs (HTTP-POST) at the IdP, or import ${ISSUER}/federation/saml/okta-saml/metadata`);
    expect(res.stderr).toEqual([]);
  });

  it('fails when the metadata URL cannot be reached', async () => {
    const res = await idpTest('--config', configFile, 'down');
    expect(res).toEqual({
      code: 3,
      stdout: ['down (generic)', '  ✗ metadata: the IdP metadata at http://127.0.0.1:1/metadata could not be fetched (http://127.0.0.1:1/metadata)', '1 check failed'],
      stderr: [],
    });
  });
});
