// The gateway config contract (DESIGN.md "Config contract"). zod schemas are the single source
// of truth: the `Config` type is inferred from them. Objects are strict (an unknown key is an
// error, so a typo never silently disables a setting). Cross-field rules (references between
// agents, resources and apps; what production mode refuses) live in `checkConfig` below so that
// every problem is reported together with its path.
import { z } from 'zod';

import { compileCondition } from './cel.ts';
import { parseServiceAccountKey } from './service-account.ts';
import { formatDuration, parseDuration } from './duration.ts';
import type { ConfigProblem } from './errors.ts';

export const requiredDuration = () =>
  z.string().transform((value, ctx) => {
    const seconds = parseDuration(value);
    if (seconds === undefined || seconds <= 0) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration (use e.g. 500ms, 90s, 5m, 8h, 7d)` });
      return z.NEVER;
    }
    return seconds;
  });

/** A duration with a default; the default is a duration string, parsed like any input. */
export const duration = (fallback: string) => requiredDuration().prefault(fallback);

const nonEmpty = z.string().trim().min(1, 'must not be empty');
const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'is not a valid scope token (RFC 6749 §3.3)');
const httpUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && !url.hash;
  } catch {
    return false;
  }
}, 'must be an absolute http(s) URL without a fragment');
const absoluteUri = z.string().refine((value) => {
  try {
    return !new URL(value).hash;
  } catch {
    return false;
  }
}, 'must be an absolute URI without a fragment');
const hostPort = z.strictObject({ host: nonEmpty, port: z.number().int().min(1).max(65535) });

const jwk = z.looseObject({ kty: z.string() });
const roleName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'is not a valid role name (letters, digits, ".", "_", ":", "-")');
const oneOrMany = z.union([nonEmpty, z.array(nonEmpty).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));

/** A CEL condition, compiled here so a bad expression is a config error with its path. */
const condition = z.string().transform((source, ctx) => {
  const compiled = compileCondition(source);
  if ('error' in compiled) {
    ctx.addIssue({ code: 'custom', message: compiled.error });
    return z.NEVER;
  }
  return compiled;
});

const redisStore = z.strictObject({
  driver: z.literal('redis'),
  /** Standalone Redis: redis://[user:pass@]host:port/db or rediss:// for TLS. */
  url: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://').optional(),
  sentinel: z.strictObject({
    /** The master group name the sentinels monitor. */
    name: nonEmpty,
    sentinels: z.array(hostPort).min(1),
    password: z.string().optional(),
    username: z.string().optional(),
    sentinelPassword: z.string().optional(),
    db: z.number().int().min(0).default(0),
    tls: z.boolean().default(false),
  }).optional(),
  cluster: z.strictObject({
    nodes: z.array(hostPort).min(1),
    password: z.string().optional(),
    username: z.string().optional(),
    tls: z.boolean().default(false),
  }).optional(),
  keyPrefix: z.string().default('agentgate:'),
  /** Fail fast: a request gets 503 within about this long when Redis is gone. */
  connectTimeout: duration('500ms'),
  commandTimeout: duration('500ms'),
});

const memoryStore = z.strictObject({
  driver: z.literal('memory'),
  keyPrefix: z.string().default('agentgate:'),
});

const secretAuth = z.strictObject({
  method: z.enum(['client_secret_basic', 'client_secret_post']),
  secret: z.string().min(32, 'must be at least 32 characters (generate one with `openssl rand -base64 32`)'),
});
const privateKeyJwtAuth = z.strictObject({
  method: z.literal('private_key_jwt'),
  jwks: z.strictObject({ keys: z.array(jwk).min(1) }).optional(),
  jwksUri: httpUrl.optional(),
});

const clientAuth = z.discriminatedUnion('method', [secretAuth, privateKeyJwtAuth]);

const agent = z.strictObject({
  clientId: nonEmpty,
  name: z.string().optional(),
  auth: clientAuth,
  /** The agent's scope ceiling: it never receives a scope outside this list. */
  scopes: z.array(scopeToken).default([]),
  /** Resource ids (config `resources[].id`) the agent may get tokens for. */
  audiences: z.array(nonEmpty).default([]),
  maxTokenTtl: duration('10m'),
  /** Agents this agent may hand work to (token exchange re-delegation). */
  delegateTo: z.array(nonEmpty).default([]),
  /** Overrides policy.maxDelegationDepth for chains this agent is part of (the smaller wins). */
  maxDelegationDepth: z.number().int().min(1).max(10).optional(),
  disabled: z.boolean().default(false),
  /** The agent's tokens must be sender-constrained (DPoP, RFC 9449). */
  requireDpop: z.boolean().default(false),
  /**
   * `required`: the person approves this agent (for these scopes and this resource) once, on the
   * consent page, before its first token; `implicit` (default): IT registering the agent is the
   * approval (admin consent).
   */
  consent: z.enum(['required', 'implicit']).default('implicit'),
  /** If set, the agent acts only for people holding at least one of these roles. */
  actsFor: z.array(roleName).min(1).optional(),
  /** What an agent gets when it omits `scope`, per audience; never "everything". */
  defaultScopes: z.record(z.string(), z.array(scopeToken)).default({}),
});

const role = z.strictObject({
  description: z.string().optional(),
  scopes: z.array(scopeToken).default([]),
});

const roleMapping = z.strictObject({
  description: z.string().optional(),
  /** The identity provider the mapping applies to (required with group/groupName). */
  idp: nonEmpty.optional(),
  /** Group id as the IdP sends it (Entra object id, Google group email, Okta group name). */
  group: nonEmpty.optional(),
  /** Group display name, for IdPs or group sources that only give names. */
  groupName: nonEmpty.optional(),
  /** CEL condition over the identity; see README "Roles and agents". */
  when: condition.optional(),
  roles: z.array(roleName).default([]),
  /** Roles this mapping takes away, whatever else grants them. */
  deny: z.array(roleName).default([]),
});

const stepUpRule = z.strictObject({
  description: z.string().optional(),
  scopes: z.array(scopeToken).min(1),
  /** Acceptable `acr` values (any one of them), RFC 9470. */
  acr: oneOrMany.optional(),
  /** Required `amr` values (all of them). */
  amr: oneOrMany.optional(),
  /** The sign-in must be at most this old. */
  maxAge: requiredDuration().optional(),
});

const adminClient = z.strictObject({
  clientId: nonEmpty,
  name: z.string().optional(),
  auth: clientAuth,
});

const idpId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be lowercase letters, digits and "-" (it appears in URLs)');
const domainName = z.string().regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i, 'is not a domain name')
  .transform((d) => d.toLowerCase());

/** Settings every OIDC identity provider shares (the generic connector). */
const oidcCommon = {
  id: idpId,
  type: z.literal('oidc'),
  displayName: z.string().min(1).optional(),
  clientId: nonEmpty,
  clientSecret: z.string().min(1),
  /** How the gateway authenticates at the IdP's token endpoint. */
  clientAuthMethod: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_post'),
  /** Requested scopes; the preset's defaults when omitted. */
  scopes: z.array(scopeToken).optional(),
  /** Email domains that route sign-ins here (home-realm discovery from login_hint). */
  domains: z.array(domainName).default([]),
  /** Extra static authorization parameters (e.g. prompt, acr_values). */
  authorizationParams: z.record(z.string(), z.string()).default({}),
  /** Follow the person to the IdP's end_session_endpoint when they sign out here. */
  upstreamLogout: z.boolean().default(true),
  /** Allowed clock skew for ID-token time claims. */
  clockTolerance: duration('60s'),
  /** Where to read identity fields in the ID token / userinfo (dotted paths). */
  claims: z.strictObject({
    subject: nonEmpty.optional(),
    email: nonEmpty.optional(),
    name: nonEmpty.optional(),
    groups: nonEmpty.optional(),
  }).prefault({}),
  /** Friendly names for group ids (Entra object ids), shown in traces and group_names. */
  groupAliases: z.record(z.string(), z.string()).default({}),
};

const genericIdp = z.strictObject({
  ...oidcCommon,
  preset: z.literal('generic'),
  issuer: httpUrl,
});

const oktaIdp = z.strictObject({
  ...oidcCommon,
  preset: z.literal('okta'),
  /** Org (https://acme.okta.com) or custom authorization server (…/oauth2/default). */
  issuer: httpUrl,
});

const azureAdIdp = z.strictObject({
  ...oidcCommon,
  preset: z.literal('azure-ad'),
  /** Directory (tenant) id, or `organizations` / `common` for a multi-tenant app. */
  tenant: nonEmpty,
  /** Tenants allowed to sign in (required for organizations/common): ids or verified domains are not accepted, only ids. */
  tenants: z.array(nonEmpty).default([]),
  /** Login authority; other clouds (e.g. https://login.microsoftonline.us) for single-tenant apps. */
  authority: httpUrl.default('https://login.microsoftonline.com'),
  /** Resolve group overage through Microsoft Graph (app permission GroupMember.Read.All). */
  graph: z.strictObject({
    enabled: z.boolean().default(true),
    baseUrl: httpUrl.default('https://graph.microsoft.com'),
    /** Page size for transitiveMemberOf. */
    pageSize: z.number().int().min(1).max(999).default(999),
  }).prefault({}),
});

const googleIdp = z.strictObject({
  ...oidcCommon,
  preset: z.literal('google-workspace'),
  issuer: httpUrl.default('https://accounts.google.com'),
  /** Workspace domains whose people may sign in; the ID token's `hd` must be one of them. */
  hostedDomains: z.array(domainName).min(1),
  /** Groups from the Admin SDK Directory API, through a service account with domain-wide delegation. */
  directory: z.strictObject({
    enabled: z.boolean().default(true),
    /** The service account key JSON (as Google issues it); use ${file:…}. */
    serviceAccountKey: z.string().min(1),
    /** A Workspace admin the service account acts as (domain-wide delegation). */
    adminEmail: z.string().email(),
    tokenUrl: httpUrl.default('https://oauth2.googleapis.com/token'),
    baseUrl: httpUrl.default('https://admin.googleapis.com'),
    pageSize: z.number().int().min(1).max(200).default(200),
  }).optional(),
});

const oidcIdentityProvider = z.discriminatedUnion('preset', [genericIdp, oktaIdp, azureAdIdp, googleIdp]);
export const oidcIdentityProviderSchema = oidcIdentityProvider;

/** A PEM block (key or certificate), usually `${file:…}`; never logged. */
const pem = (kind: 'key' | 'certificate') => z.string().refine(
  (value) => (kind === 'key' ? /-----BEGIN [A-Z ]*PRIVATE KEY-----/ : /-----BEGIN CERTIFICATE-----/).test(value),
  `must be a PEM ${kind === 'key' ? 'private key' : 'certificate'} (use \${file:/path/to/file.pem})`,
);

/** Settings every SAML 2.0 identity provider shares (the generic SAML connector, src/federation/saml). */
const samlCommon = {
  id: idpId,
  type: z.literal('saml'),
  displayName: z.string().min(1).optional(),
  /** Email domains that route sign-ins here (home-realm discovery from login_hint). */
  domains: z.array(domainName).default([]),
  /** The IdP's SAML metadata: exactly one of url (refreshed), file (re-read) or inline xml. */
  metadata: z.strictObject({
    url: httpUrl.optional(),
    file: nonEmpty.optional(),
    xml: z.string().min(1).optional(),
    /** The IdP's entityID, when the metadata describes several entities. */
    entityId: nonEmpty.optional(),
    /** How often url/file metadata is re-read; the last good copy is kept when that fails. */
    refresh: duration('6h'),
  }),
  /** The gateway as a service provider toward this IdP. */
  sp: z.strictObject({
    /** Default {issuer}/federation/saml/{id}/metadata. */
    entityId: absoluteUri.optional(),
    /** Signs AuthnRequests and LogoutRequests (HTTP-Redirect binding, RSA-SHA256). */
    signingKey: pem('key').optional(),
    signingCert: pem('certificate').optional(),
    /** Published in the SP metadata ahead of a key rollover. */
    nextSigningCert: pem('certificate').optional(),
    /** Decrypts EncryptedAssertion. */
    decryptionKey: pem('key').optional(),
    decryptionCert: pem('certificate').optional(),
  }).prefault({}),
  /** Sign AuthnRequests (default: when sp.signingKey is set). */
  signAuthnRequests: z.boolean().optional(),
  /** Require the Response itself to be signed, not only the assertion (preset default). */
  wantResponseSigned: z.boolean().optional(),
  /** NameIDPolicy Format requested (preset default). */
  nameIdFormat: nonEmpty.optional(),
  /**
   * Where identity fields come from: `subject` is "nameid" (a persistent NameID) or the name of an
   * immutable attribute; the others are attribute names (preset defaults).
   */
  attributes: z.strictObject({
    subject: nonEmpty.optional(),
    email: nonEmpty.optional(),
    name: nonEmpty.optional(),
    groups: nonEmpty.optional(),
  }).prefault({}),
  groupAliases: z.record(z.string(), z.string()).default({}),
  /** Allowed clock skew for assertion time conditions (at most 5 minutes). */
  clockSkew: duration('60s').refine((seconds) => seconds <= 300, 'must be at most 5m'),
  /** Send the person to the IdP's SingleLogoutService when they sign out here. */
  upstreamLogout: z.boolean().default(true),
  /** Unsolicited (IdP-initiated) responses: off unless enabled, and then only into one app. */
  idpInitiated: z.strictObject({
    enabled: z.boolean().default(false),
    /** The app (apps[].clientId) the person lands in. */
    app: nonEmpty.optional(),
    /**
     * That app's login-initiation URL (OIDC Core §4, "initiate_login_uri"): the gateway sends the
     * person there with `iss`, the app starts an ordinary sign-in, and it completes at once.
     */
    initiateLoginUri: httpUrl.optional(),
  }).prefault({}),
};

const samlGenericIdp = z.strictObject({ ...samlCommon, preset: z.literal('generic') });
const samlOktaIdp = z.strictObject({ ...samlCommon, preset: z.literal('okta') });
const samlAzureAdIdp = z.strictObject({
  ...samlCommon,
  preset: z.literal('azure-ad'),
  /** Directory (tenant) id: the assertion's tenantid attribute must match. */
  tenant: nonEmpty,
  /** Group overage (groups.link) through Microsoft Graph, with an app registration's client credentials. */
  graph: z.strictObject({
    enabled: z.boolean().default(true),
    clientId: nonEmpty,
    clientSecret: z.string().min(1),
    authority: httpUrl.default('https://login.microsoftonline.com'),
    baseUrl: httpUrl.default('https://graph.microsoft.com'),
    pageSize: z.number().int().min(1).max(999).default(999),
  }).optional(),
});
const samlGoogleIdp = z.strictObject({
  ...samlCommon,
  preset: z.literal('google-workspace'),
  /** Workspace domains whose people may sign in; the email's domain must be one of them. */
  hostedDomains: z.array(domainName).min(1),
  directory: googleIdp.shape.directory,
});
const samlIdentityProvider = z.discriminatedUnion('preset', [samlGenericIdp, samlOktaIdp, samlAzureAdIdp, samlGoogleIdp]);

const identityProvider = z.discriminatedUnion('type', [oidcIdentityProvider, samlIdentityProvider]);

const app = z.strictObject({
  clientId: nonEmpty,
  name: z.string().optional(),
  /** Confidential when set (client_secret_basic); public (PKCE only) otherwise. */
  clientSecret: z.string().min(32, 'must be at least 32 characters').optional(),
  redirectUris: z.array(absoluteUri).min(1),
  postLogoutRedirectUris: z.array(absoluteUri).default([]),
  /** Resource ids the app may request tokens for (RFC 8707 `resource`). */
  audiences: z.array(nonEmpty).default([]),
});

/** A scope a resource offers: its token, or `{ name, description }` (the words the consent and My agents pages show). */
const resourceScope = z.union([scopeToken, z.strictObject({ name: scopeToken, description: nonEmpty })]);

const resource = z.strictObject({
  id: absoluteUri,
  name: z.string().optional(),
  scopes: z.array(resourceScope).min(1),
  tokenTtl: duration('5m'),
  /**
   * The resource server's own client (client_credentials only): it reads the revocation feed
   * (scope agentgate:revocations) and may introspect tokens.
   */
  client: z.strictObject({
    clientId: nonEmpty,
    name: z.string().optional(),
    auth: clientAuth,
  }).optional(),
}).transform(({ scopes, ...rest }) => ({
  ...rest,
  scopes: scopes.map((scope) => (typeof scope === 'string' ? scope : scope.name)),
  /** scope → plain words, for the scopes configured with a description. */
  scopeDescriptions: Object.fromEntries(scopes.flatMap((scope) => (typeof scope === 'string' ? [] : [[scope.name, scope.description]]))) as Record<string, string>,
}));

/** A person of the built-in demo identity provider (development mode only). */
const demoPerson = z.strictObject({
  username: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'must be lowercase letters, digits, ".", "_" or "-"'),
  name: nonEmpty,
  email: z.string().regex(/^[^\s@]{1,64}@[^\s@]{1,255}$/, 'is not an email address'),
  groups: z.array(nonEmpty).default([]),
  /** What the demo IdP reports as the sign-in's authentication context (e.g. mfa for step-up rules). */
  acr: nonEmpty.optional(),
});

/** Where the demo IdP is mounted under the issuer (its own issuer is `{issuer}/demo-idp`). */
export const DEMO_IDP_PATH = '/demo-idp';

/**
 * The gateway's own first-party client (src/authz/clients.ts): it signs a browser into the
 * account pages and the admin console. Reserved: no configured client may take this id.
 */
export const ACCOUNT_CLIENT_ID = 'agentgate-account';

export const configSchema = z.strictObject({
  mode: z.enum(['production', 'development']).default('production'),
  issuer: httpUrl.refine((value) => !value.endsWith('/'), 'must not end with "/"')
    .refine((value) => { try { return !new URL(value).search; } catch { return true; } }, 'must not have a query'),
  listen: z.strictObject({
    host: nonEmpty.default('0.0.0.0'),
    port: z.number().int().min(0).max(65535).default(8080),
  }).prefault({}),
  /** Trust X-Forwarded-* from the reverse proxy / ingress in front of the gateway. */
  trustProxy: z.boolean().default(false),
  store: z.discriminatedUnion('driver', [redisStore, memoryStore]),
  keys: z.strictObject({
    /** Private JWKS written by `agentgate keys generate`; newest key first. */
    file: nonEmpty.optional(),
    /** Development only: generate an in-memory key at start (tokens die with the process). */
    generate: z.boolean().default(false),
    alg: z.enum(['ES256', 'EdDSA', 'RS256']).default('ES256'),
  }),
  cookies: z.strictObject({
    keys: z.array(z.string().min(32, 'must be at least 32 characters')).min(1),
  }).optional(),
  session: z.strictObject({
    ttl: duration('8h'),
    idleTtl: duration('1h'),
  }).prefault({}),
  tokens: z.strictObject({
    accessTokenTtl: duration('10m'),
    idTokenTtl: duration('1h'),
    refreshTokenTtl: duration('8h'),
    authorizationCodeTtl: duration('60s'),
    clientCredentialsTtl: duration('10m'),
  }).prefault({}),
  identityProviders: z.array(identityProvider).default([]),
  resources: z.array(resource).default([]),
  agents: z.array(agent).default([]),
  apps: z.array(app).default([]),
  roles: z.record(roleName, role).default({}),
  roleMappings: z.array(roleMapping).default([]),
  stepUp: z.array(stepUpRule).default([]),
  policy: z.strictObject({
    /** Longest actor chain a token may carry (RFC 8693 §4.1 `act` nesting). */
    maxDelegationDepth: z.number().int().min(1).max(10).default(3),
  }).prefault({}),
  /** Clients of the admin API (client_credentials, scope agentgate:admin). */
  admin: z.strictObject({
    clients: z.array(adminClient).default([]),
    /** Gateway roles whose people may use the admin console (/admin pages), signed in through the gateway. */
    roles: z.array(roleName).default([]),
  }).prefault({}),
  /**
   * Development only: an in-process OpenID Provider with a few demo people, mounted at
   * `{issuer}/demo-idp` and federated through the ordinary OIDC connector as identity provider `id`.
   */
  demoIdp: z.strictObject({
    enabled: z.boolean().default(false),
    id: idpId.default('demo'),
    displayName: nonEmpty.default('Demo IdP'),
    domains: z.array(domainName).default([]),
    people: z.array(demoPerson).default([]),
  }).prefault({}),
  /** Development-only sign-in form standing in for federation; refused in production mode. */
  devLogin: z.strictObject({ enabled: z.boolean().default(false) }).prefault({}),
  logging: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  }).prefault({}),
  shutdown: z.strictObject({
    /** How long in-flight requests may run after SIGTERM before connections are cut. */
    timeout: duration('10s'),
  }).prefault({}),
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type AgentConfig = Config['agents'][number];
export type AppConfig = Config['apps'][number];
export type ResourceConfig = Config['resources'][number];
export type StoreConfig = Config['store'];
export type IdentityProviderConfig = Config['identityProviders'][number];
export type OidcIdentityProviderConfig = Extract<IdentityProviderConfig, { type: 'oidc' }>;
export type SamlIdentityProviderConfig = Extract<IdentityProviderConfig, { type: 'saml' }>;
export type RoleMappingConfig = Config['roleMappings'][number];
export type StepUpConfig = Config['stepUp'][number];
export type AdminClientConfig = Config['admin']['clients'][number];
export type ResourceClientConfig = NonNullable<ResourceConfig['client']>;
export type DemoPersonConfig = Config['demoIdp']['people'][number];

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

function isLoopbackHttp(value: string): boolean {
  const url = new URL(value);
  return url.protocol === 'http:' && LOOPBACK.has(url.hostname);
}

/** Cross-field rules of a SAML identity provider (identityProviders[i], type saml). */
function checkSamlIdp(
  idp: SamlIdentityProviderConfig,
  at: string,
  context: { production: boolean; add: (path: string, message: string) => void; apps: Config['apps'] },
): void {
  const { add } = context;
  const sources = (['url', 'file', 'xml'] as const).filter((k) => idp.metadata[k] !== undefined);
  if (sources.length !== 1) add(`${at}.metadata`, 'needs exactly one of url, file or xml');
  if (context.production && idp.metadata.url && new URL(idp.metadata.url).protocol !== 'https:') add(`${at}.metadata.url`, 'must be https in production mode');
  if (Boolean(idp.sp.signingKey) !== Boolean(idp.sp.signingCert)) add(`${at}.sp`, 'signingKey and signingCert go together');
  if (Boolean(idp.sp.decryptionKey) !== Boolean(idp.sp.decryptionCert)) add(`${at}.sp`, 'decryptionKey and decryptionCert go together');
  if (idp.signAuthnRequests && !idp.sp.signingKey) add(`${at}.signAuthnRequests`, 'needs sp.signingKey and sp.signingCert');
  const subject = idp.attributes.subject;
  if (subject && subject.toLowerCase() !== 'nameid' && (subject === idp.attributes.email || /mail/i.test(subject))) {
    add(`${at}.attributes.subject`, 'must be an immutable identifier (a persistent NameID or an id attribute), never an email address');
  }
  if (idp.idpInitiated.enabled) {
    const app = idp.idpInitiated.app ? context.apps.find((a) => a.clientId === idp.idpInitiated.app) : undefined;
    if (!idp.idpInitiated.app) add(`${at}.idpInitiated.app`, 'required when IdP-initiated sign-in is enabled: the one app people land in');
    else if (!app) add(`${at}.idpInitiated.app`, `unknown app "${idp.idpInitiated.app}" (not in apps)`);
    if (!idp.idpInitiated.initiateLoginUri) add(`${at}.idpInitiated.initiateLoginUri`, 'required when IdP-initiated sign-in is enabled: the app URL that starts a sign-in (OIDC Core §4)');
    else if (context.production && !idp.idpInitiated.initiateLoginUri.startsWith('https:')) add(`${at}.idpInitiated.initiateLoginUri`, 'must be https in production mode');
  }
}

/** Rules that span fields. Runs only on a config that passed the schema. */
export function checkConfig(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (path: string, message: string) => problems.push({ path, message });
  const production = config.mode === 'production';

  if (production) {
    if (new URL(config.issuer).protocol !== 'https:') {
      add('issuer', 'must be an https URL in production mode');
    }
    if (config.store.driver === 'memory') {
      add('store.driver', '"memory" is allowed only in development mode: it loses every session and token on restart and cannot be shared by replicas; use driver: redis');
    }
    if (config.keys.generate) {
      add('keys.generate', 'generated keys are allowed only in development mode: every token dies on restart and replicas would not agree; run `agentgate keys generate --out FILE` and set keys.file');
    }
    if (!config.cookies) {
      add('cookies', 'cookies.keys is required in production mode (at least one random key of 32+ characters, newest first)');
    }
    if (config.devLogin.enabled) {
      add('devLogin.enabled', 'the development test login page is refused in production mode');
    }
    if (config.demoIdp.enabled) {
      add('demoIdp.enabled', 'the built-in demo identity provider is refused in production mode (it signs anyone in with one click); set mode: development to run the demo');
    }
  }
  config.admin.roles.forEach((role, i) => {
    if (!Object.hasOwn(config.roles, role)) add(`admin.roles[${i}]`, `unknown role "${role}" (not in roles)`);
  });
  if (config.demoIdp.enabled) {
    if (config.demoIdp.people.length === 0) add('demoIdp.people', 'needs at least one person to sign in as');
    const usernames = new Set<string>();
    config.demoIdp.people.forEach((person, i) => {
      if (usernames.has(person.username)) add(`demoIdp.people[${i}].username`, `duplicate demo person "${person.username}"`);
      usernames.add(person.username);
    });
  }

  if (config.keys.file && config.keys.generate) add('keys', 'set either keys.file or keys.generate, not both');
  if (!config.keys.file && !config.keys.generate) add('keys.file', 'required (or keys.generate: true in development mode)');

  if (config.store.driver === 'redis') {
    const modes = [config.store.url, config.store.sentinel, config.store.cluster].filter(Boolean).length;
    if (modes !== 1) add('store', 'a redis store needs exactly one of url, sentinel or cluster');
  }

  const resources = new Map<string, Config['resources'][number]>();
  config.resources.forEach((res, i) => {
    if (resources.has(res.id)) {
      add(`resources[${i}].id`, `duplicate resource "${res.id}"`);
      return;
    }
    resources.set(res.id, res);
    if (production && new URL(res.id).protocol === 'http:' && !isLoopbackHttp(res.id)) {
      add(`resources[${i}].id`, 'must be https in production mode');
    }
  });

  const clientIds = new Map<string, string>();
  const claimClientId = (id: string, path: string) => {
    const previous = clientIds.get(id);
    if (id === ACCOUNT_CLIENT_ID) add(path, `client id "${id}" is reserved for the gateway's own sign-in to its account pages and admin console`);
    else if (previous) add(path, `duplicate client id "${id}" (also ${previous})`);
    else clientIds.set(id, path);
  };

  const agentIds = new Set(config.agents.map((a) => a.clientId));
  config.agents.forEach((agentConfig, i) => {
    const at = `agents[${i}]`;
    claimClientId(agentConfig.clientId, `${at}.clientId`);
    const audienceScopes = new Set<string>();
    agentConfig.audiences.forEach((aud, j) => {
      const res = resources.get(aud);
      if (!res) add(`${at}.audiences[${j}]`, `unknown resource "${aud}" (not in resources[].id)`);
      else res.scopes.forEach((s) => audienceScopes.add(s));
    });
    const everyScope = new Set(config.resources.flatMap((res) => res.scopes));
    agentConfig.scopes.forEach((scope, j) => {
      if (agentConfig.audiences.length > 0 && !audienceScopes.has(scope)) {
        add(`${at}.scopes[${j}]`, `"${scope}" is not a scope of any of this agent's audiences`);
      } else if (agentConfig.audiences.length === 0 && !everyScope.has(scope)) {
        add(`${at}.scopes[${j}]`, `"${scope}" is not a scope of any resource`);
      }
    });
    agentConfig.delegateTo.forEach((target, j) => {
      if (!agentIds.has(target)) add(`${at}.delegateTo[${j}]`, `unknown agent "${target}"`);
      else if (target === agentConfig.clientId) add(`${at}.delegateTo[${j}]`, 'an agent cannot delegate to itself');
    });
    if (agentConfig.auth.method === 'private_key_jwt') {
      const { jwks, jwksUri } = agentConfig.auth;
      if (Boolean(jwks) === Boolean(jwksUri)) add(`${at}.auth`, 'private_key_jwt needs exactly one of jwks or jwksUri');
      jwks?.keys.forEach((key, k) => {
        if ('d' in key || 'k' in key) add(`${at}.auth.jwks.keys[${k}]`, 'must be a public key (the agent keeps its private key)');
      });
    }
  });

  const allScopes = new Set(config.resources.flatMap((res) => res.scopes));
  const roleNames = new Set(Object.keys(config.roles));
  const checkRole = (name: string, path: string) => {
    if (!roleNames.has(name)) add(path, `unknown role "${name}" (not in roles)`);
  };

  config.agents.forEach((agentConfig, i) => {
    const at = `agents[${i}]`;
    agentConfig.actsFor?.forEach((name, j) => checkRole(name, `${at}.actsFor[${j}]`));
    for (const [aud, scopes] of Object.entries(agentConfig.defaultScopes)) {
      if (!agentConfig.audiences.includes(aud)) {
        add(`${at}.defaultScopes.${aud}`, `"${aud}" is not one of this agent's audiences`);
        continue;
      }
      scopes.forEach((scope, j) => {
        if (!agentConfig.scopes.includes(scope)) add(`${at}.defaultScopes.${aud}[${j}]`, `"${scope}" is outside this agent's scopes`);
        else if (!resources.get(aud)?.scopes.includes(scope)) add(`${at}.defaultScopes.${aud}[${j}]`, `"${scope}" is not a scope of "${aud}"`);
      });
    }
  });

  for (const [name, roleConfig] of Object.entries(config.roles)) {
    roleConfig.scopes.forEach((scope, j) => {
      if (!allScopes.has(scope)) add(`roles.${name}.scopes[${j}]`, `"${scope}" is not a scope of any resource`);
    });
  }

  const idpIds = new Set<string>();
  const domainOwner = new Map<string, string>();
  config.identityProviders.forEach((idp, i) => {
    const at = `identityProviders[${i}]`;
    if (idpIds.has(idp.id)) add(`${at}.id`, `duplicate identity provider "${idp.id}"`);
    idpIds.add(idp.id);
    idp.domains.forEach((domain, j) => {
      const owner = domainOwner.get(domain);
      if (owner) add(`${at}.domains[${j}]`, `"${domain}" already routes to identity provider "${owner}"`);
      else domainOwner.set(domain, idp.id);
    });
    if (idp.type === 'saml') {
      checkSamlIdp(idp, at, { production, add, apps: config.apps });
    } else {
      const issuer = 'issuer' in idp ? idp.issuer : idp.authority;
      if (production && new URL(issuer).protocol !== 'https:') add(`${at}.${'issuer' in idp ? 'issuer' : 'authority'}`, 'must be https in production mode');
    }
    if (idp.preset === 'google-workspace' && idp.directory?.enabled && !parseServiceAccountKey(idp.directory.serviceAccountKey)) {
      add(`${at}.directory.serviceAccountKey`, 'is not a Google service account key (the JSON file Google issues, with client_email and private_key); use ${file:/path/to/key.json}');
    }
    if (idp.type === 'oidc' && idp.preset === 'azure-ad') {
      const multi = idp.tenant === 'common' || idp.tenant === 'organizations';
      if (multi && idp.tenants.length === 0) {
        add(`${at}.tenants`, `required when tenant is "${idp.tenant}": list the tenant ids allowed to sign in (a multi-tenant app otherwise admits every Entra tenant in the world)`);
      }
      if (multi && new URL(idp.authority).origin !== 'https://login.microsoftonline.com') {
        add(`${at}.authority`, 'multi-tenant apps are supported on https://login.microsoftonline.com only; use a tenant id elsewhere');
      }
      if (!multi && idp.tenant === 'consumers') add(`${at}.tenant`, 'personal Microsoft accounts are not enterprise identities');
    }
  });

  config.roleMappings.forEach((mapping, i) => {
    const at = `roleMappings[${i}]`;
    // Checked once identity providers are configured (policy-only configs, e.g. for `explain`,
    // may name IdPs this file does not wire up). `dev` is the development login.
    if (mapping.idp && idpIds.size > 0 && !idpIds.has(mapping.idp) && mapping.idp !== 'dev') {
      add(`${at}.idp`, `unknown identity provider "${mapping.idp}" (not in identityProviders)`);
    }
    if (!mapping.idp && !mapping.group && !mapping.groupName && !mapping.when) {
      add(at, 'needs at least one of idp, group, groupName or when (a mapping must not match everyone by accident)');
    }
    if ((mapping.group || mapping.groupName) && !mapping.idp) {
      add(`${at}.idp`, 'required with group/groupName: group ids and names are only meaningful within one identity provider');
    }
    if (mapping.group && mapping.groupName) add(at, 'set group or groupName, not both');
    if (mapping.roles.length === 0 && mapping.deny.length === 0) add(at, 'needs roles or deny');
    mapping.roles.forEach((name, j) => checkRole(name, `${at}.roles[${j}]`));
    mapping.deny.forEach((name, j) => checkRole(name, `${at}.deny[${j}]`));
  });

  config.stepUp.forEach((rule, i) => {
    const at = `stepUp[${i}]`;
    rule.scopes.forEach((scope, j) => {
      if (!allScopes.has(scope)) add(`${at}.scopes[${j}]`, `"${scope}" is not a scope of any resource`);
    });
    if (!rule.acr && !rule.amr && rule.maxAge === undefined) add(at, 'needs at least one of acr, amr or maxAge');
  });

  config.admin.clients.forEach((client, i) => {
    claimClientId(client.clientId, `admin.clients[${i}].clientId`);
    if (client.auth.method === 'private_key_jwt' && Boolean(client.auth.jwks) === Boolean(client.auth.jwksUri)) {
      add(`admin.clients[${i}].auth`, 'private_key_jwt needs exactly one of jwks or jwksUri');
    }
  });

  config.resources.forEach((res, i) => {
    if (!res.client) return;
    const at = `resources[${i}].client`;
    claimClientId(res.client.clientId, `${at}.clientId`);
    if (res.client.auth.method === 'private_key_jwt') {
      const { jwks, jwksUri } = res.client.auth;
      if (Boolean(jwks) === Boolean(jwksUri)) add(`${at}.auth`, 'private_key_jwt needs exactly one of jwks or jwksUri');
      jwks?.keys.forEach((key, k) => {
        if ('d' in key || 'k' in key) add(`${at}.auth.jwks.keys[${k}]`, 'must be a public key (the resource server keeps its private key)');
      });
    }
  });

  config.apps.forEach((appConfig, i) => {
    const at = `apps[${i}]`;
    claimClientId(appConfig.clientId, `${at}.clientId`);
    appConfig.audiences.forEach((aud, j) => {
      if (!resources.has(aud)) add(`${at}.audiences[${j}]`, `unknown resource "${aud}" (not in resources[].id)`);
    });
    if (production) {
      appConfig.redirectUris.forEach((uri, j) => {
        if (new URL(uri).protocol === 'http:' && !isLoopbackHttp(uri)) {
          add(`${at}.redirectUris[${j}]`, 'must be https (or http on a loopback host) in production mode');
        }
      });
    }
  });

  if (config.session.idleTtl > config.session.ttl) {
    add('session.idleTtl', `must not exceed session.ttl (${formatDuration(config.session.ttl)})`);
  }

  return problems;
}
