// SimpleSAMLphp (Debian package) as a real SAML 2.0 IdP on a loopback port, for federation tests
// (/work/shared/notes/saml-peer-and-library-facts.md). Each peer has its own config directory in a
// temp dir (config.php, authsources.php, metadata/, cert/), its own RSA signing key made with
// openssl, users with attributes given by the test (Okta-, Azure- or Google-style names), and
// service providers registered as saml20-sp-remote entries. /etc/simplesamlphp stays untouched.
//
// Headless sign-in: the gateway's redirect → SSOService.php → 302 to the userpass login form →
// POST username/password/AuthState → an auto-POST page carrying SAMLResponse and RelayState for
// the SP's ACS (returned to the test, which may tamper with it before posting).
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { freePort } from '../redis-server.ts';
import { parseForms } from './browser.ts';
import type { HtmlForm, Hop, PeerBrowser } from './browser.ts';

const run = promisify(execFile);
export const SSP_WWW = '/usr/share/simplesamlphp/www';
export const SAML_IDP_MISSING =
  'SimpleSAMLphp is not installed. The SAML tests run a real IdP: ' +
  '`sudo apt-get install -y --no-install-recommends simplesamlphp php-cli php-xml php-mbstring php-curl openssl`.';

export const NAMEID = {
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  transient: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
  email: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  unspecified: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
} as const;

export const ATTRNAME_URI = 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri';

export interface SamlIdpUser {
  username: string;
  password: string;
  /** Released as they are (multi-valued lists stay lists; a one-item list is one value). */
  attributes: Record<string, string[]>;
}

export interface SamlSpRegistration {
  entityId: string;
  acs: string;
  slo?: string;
  /** Binding(s) the IdP may use toward the SP's SLO endpoint (default both, Redirect first). */
  sloBindings?: ('redirect' | 'post')[];
  /** Default persistent. */
  nameIdFormat?: string;
  /** The attribute the NameID value is taken from (default `uid`). */
  nameIdAttribute?: string;
  /** Attribute NameFormat (Azure style: the uri format). */
  attributeNameFormat?: string;
  signResponse?: boolean;
  signAssertion?: boolean;
  /** SP signing certificate (PEM): then the IdP requires signed AuthnRequests / logout messages. */
  certificate?: string;
  validateAuthnRequest?: boolean;
  /** Encrypt assertions to this certificate (PEM). */
  encryptionCertificate?: string;
  /** Extra raw SP metadata options. */
  extra?: Record<string, unknown>;
}

export interface SamlIdpPeer {
  /** http://127.0.0.1:PORT */
  readonly origin: string;
  readonly entityId: string;
  readonly metadataUrl: string;
  readonly ssoUrl: string;
  readonly sloUrl: string;
  /** The IdP signing certificate (PEM) and key (PEM, for tests that forge "genuinely signed" documents). */
  readonly certificate: string;
  readonly privateKey: string;
  /** The IdP metadata XML as SimpleSAMLphp publishes it. */
  metadata(): Promise<string>;
  registerSp(sp: SamlSpRegistration): Promise<void>;
  close(): Promise<void>;
}

/** A PHP literal for a JSON-able value (config files are PHP arrays). */
function php(value: unknown): string {
  return `json_decode(${JSON.stringify(JSON.stringify(value)).replace(/\$/g, '\\$')}, true)`;
}

export async function generateCertificate(dir: string, name: string, cn: string, days = 30): Promise<{ key: string; cert: string; keyFile: string; certFile: string }> {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-keyout', keyFile, '-out', certFile, '-days', String(days), '-subj', `/CN=${cn}`]);
  return { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8'), keyFile, certFile };
}

export async function startSamlIdp(options: { users: SamlIdpUser[]; sps?: SamlSpRegistration[] }): Promise<SamlIdpPeer> {
  if (!existsSync(SSP_WWW)) throw new Error(SAML_IDP_MISSING);
  const dir = await mkdtemp(join(tmpdir(), 'agentgate-ssp-'));
  for (const sub of ['config', 'metadata', 'cert', 'data', 'tmp', 'log']) await mkdir(join(dir, sub));
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const { key, cert } = await generateCertificate(join(dir, 'cert'), 'idp', `ssp-${port}`);

  await writeFile(join(dir, 'config', 'config.php'), `<?php
$config = ${php({
    baseurlpath: `${origin}/`,
    certdir: `${dir}/cert/`,
    loggingdir: `${dir}/log/`,
    datadir: `${dir}/data/`,
    tempdir: `${dir}/tmp/`,
    metadatadir: `${dir}/metadata/`,
    attributenamemapdir: '/usr/share/simplesamlphp/attributemap/',
    secretsalt: `salt-${port}-${Math.random().toString(36).slice(2)}`,
    'auth.adminpassword': `admin-${Math.random().toString(36).slice(2)}`,
    technicalcontact_name: 'Test',
    technicalcontact_email: 'test@example.test',
    timezone: 'UTC',
    'enable.saml20-idp': true,
    'module.enable': { exampleauth: true, core: true, saml: true },
    'logging.handler': 'file',
    'logging.logfile': 'simplesamlphp.log',
    'logging.level': 5,
    'session.cookie.name': `SSPSession${port}`,
    'session.phpsession.cookiename': `SSPPHP${port}`,
    'session.authtoken.cookiename': `SSPAuthToken${port}`,
    'session.cookie.secure': false,
    'session.cookie.samesite': null,
    'store.type': 'phpsession',
    'debug': { saml: false, backtraces: true, validatexml: false },
    showerrors: true,
    errorreporting: false,
    'admin.checkforupdates': false,
    'assertion.allowed_clock_skew': 180,
    'trusted.url.domains': ['127.0.0.1'],
  })};
`);
  const accounts = Object.fromEntries(options.users.map((u) => [`${u.username}:${u.password}`, u.attributes]));
  await writeFile(join(dir, 'config', 'authsources.php'), `<?php
$config = ['admin' => ['core:AdminPassword'], 'users' => array_merge(['exampleauth:UserPass'], ${php(accounts)})];
`);
  await writeFile(join(dir, 'metadata', 'saml20-idp-hosted.php'), `<?php
$metadata['__DYNAMIC:1__'] = ${php({
    host: '__DEFAULT__',
    privatekey: 'idp.key',
    certificate: 'idp.crt',
    auth: 'users',
    'signature.algorithm': 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'SingleLogoutServiceBinding': ['urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST'],
  })};
`);
  const sps = new Map<string, SamlSpRegistration>();
  async function writeSps() {
    const entries = [...sps.values()].map((sp) => {
      const entry: Record<string, unknown> = {
        AssertionConsumerService: [{ Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', Location: sp.acs, index: 0 }],
        ...(sp.slo ? { SingleLogoutService: (sp.sloBindings ?? ['redirect', 'post']).map((b) => ({
          Binding: b === 'redirect' ? 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect' : 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
          Location: sp.slo,
        })) } : {}),
        NameIDFormat: sp.nameIdFormat ?? NAMEID.persistent,
        'simplesaml.nameidattribute': sp.nameIdAttribute ?? 'uid',
        'saml20.sign.response': sp.signResponse ?? true,
        'saml20.sign.assertion': sp.signAssertion ?? true,
        'sign.logout': true,
        'signature.algorithm': 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
        'simplesaml.attributes': true,
        ...(sp.attributeNameFormat ? { 'attributes.NameFormat': sp.attributeNameFormat } : {}),
        ...(sp.certificate ? { certData: pemBody(sp.certificate), 'validate.authnrequest': sp.validateAuthnRequest ?? true, 'validate.logout': true } : {}),
        ...(sp.encryptionCertificate ? { 'assertion.encryption': true, keys: [{ encryption: true, signing: false, type: 'X509Certificate', X509Certificate: pemBody(sp.encryptionCertificate) }, ...(sp.certificate ? [{ encryption: false, signing: true, type: 'X509Certificate', X509Certificate: pemBody(sp.certificate) }] : [])] } : {}),
        ...sp.extra,
      };
      return `$metadata[${JSON.stringify(sp.entityId).replace(/\$/g, '\\$')}] = ${php(entry)};`;
    });
    await writeFile(join(dir, 'metadata', 'saml20-sp-remote.php'), `<?php\n${entries.join('\n')}\n`);
  }
  for (const sp of options.sps ?? []) sps.set(sp.entityId, sp);
  await writeSps();

  const child: ChildProcess = spawn('php', ['-S', `127.0.0.1:${port}`, '-t', SSP_WWW], {
    env: { ...process.env, SIMPLESAMLPHP_CONFIG_DIR: join(dir, 'config'), PHP_CLI_SERVER_WORKERS: '2' },
    stdio: ['ignore', 'ignore', 'pipe'],
    // Its own process group: `php -S` with workers forks, and the workers must go with it.
    detached: true,
  });
  let stderr = '';
  child.stderr?.on('data', (d) => { stderr = (stderr + String(d)).slice(-4000); });
  const metadataUrl = `${origin}/saml2/idp/metadata.php`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`SimpleSAMLphp exited with ${child.exitCode}: ${stderr}`);
    try {
      const res = await fetch(metadataUrl);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      process.kill(-child.pid!, 'SIGKILL');
      throw new Error(`SimpleSAMLphp not ready in time: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    origin,
    entityId: metadataUrl,
    metadataUrl,
    ssoUrl: `${origin}/saml2/idp/SSOService.php`,
    sloUrl: `${origin}/saml2/idp/SingleLogoutService.php`,
    certificate: cert,
    privateKey: key,
    async metadata() {
      const res = await fetch(metadataUrl);
      return res.text();
    },
    async registerSp(sp) {
      sps.set(sp.entityId, sp);
      await writeSps();
    },
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        process.kill(-child.pid!, 'SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function pemBody(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

/** What the IdP's auto-POST page carries to the SP. */
export interface SamlPost {
  action: string;
  fields: Record<string, string>;
}

/**
 * Walks from `start` (a gateway URL that redirects to the IdP) through the IdP's login form to the
 * auto-POST page, and returns its form without submitting it. `hops` are the pages met.
 */
export async function walkToSamlPost(
  browser: PeerBrowser,
  start: string,
  credentials: { username: string; password: string },
): Promise<{ post?: SamlPost; hops: Hop[] }> {
  const hops: Hop[] = [];
  let hop = await browser.get(start);
  hops.push(hop);
  for (let i = 0; i < 20; i += 1) {
    if (hop.location && hop.status >= 300 && hop.status < 400) {
      hop = await browser.get(hop.location);
      hops.push(hop);
      continue;
    }
    const forms: HtmlForm[] = (hop.headers.get('content-type') ?? '').includes('html') ? parseForms(hop.body, hop.url) : [];
    const samlForm = forms.find((f) => 'SAMLResponse' in f.fields || 'SAMLRequest' in f.fields);
    if (samlForm) return { post: { action: samlForm.action, fields: samlForm.fields }, hops };
    const login = forms.find((f) => f.inputs.includes('username') && f.inputs.includes('password'));
    if (!login) return { hops };
    hop = await browser.postForm(login.action, { ...login.fields, username: credentials.username, password: credentials.password });
    hops.push(hop);
  }
  return { hops };
}
