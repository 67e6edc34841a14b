// Microsoft Entra ID as a test peer, on https://login.microsoftonline.com and
// https://graph.microsoft.com of the loopback internet.
//
// - Per tenant, an OpenID Provider with issuer https://login.microsoftonline.com/<tid>/v2.0 and
//   Entra's endpoint paths (/<tid>/oauth2/v2.0/authorize|token|logout, /<tid>/discovery/v2.0/keys),
//   ID tokens shaped like Entra v2.0 ones: `tid`, `oid`, a pairwise-looking `sub` per app,
//   `preferred_username`, `name`, `email` (when the user has one), `ver: "2.0"`, app `roles`, and
//   `groups` (object ids) for apps with groupMembershipClaims — or, past the overage threshold,
//   `_claim_names`/`_claim_sources` pointing at Graph (or `hasgroups: true`).
// - Multi-tenant: /common and /organizations discovery with the `{tenantid}` issuer template,
//   an authorize endpoint that finds the home tenant (login_hint, domain_hint, or a username
//   form) and hands the browser to it, a token endpoint that redeems the code at whichever tenant
//   issued it, and a JWKS with every tenant's keys.
// - App-only tokens for Graph: client_credentials with scope https://graph.microsoft.com/.default
//   at /<tid>/oauth2/v2.0/token, signed by the tenant key, `roles` = the app's permissions.
// - Microsoft Graph: transitiveMemberOf (paged through @odata.nextLink), memberOf,
//   getMemberObjects/getMemberGroups, with Graph's 401/403/404 error shapes and failure injection.
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

import express from 'express';
import type { Request, Response } from 'express';
import { SignJWT, createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { JWK } from 'jose';

import { hostOrigins, internalRequest, parseBasic, readForm, relay, sendJson } from './host.ts';
import type { PeerHost } from './host.ts';
import type { LoopbackInternet } from './internet.ts';
import { createOidcIssuer, digest, loginPage } from './oidc-issuer.ts';
import type { OidcIssuer, OidcPeerHandle, PeerClient, PeerUser } from './oidc-issuer.ts';

export const ENTRA_ORIGIN = 'https://login.microsoftonline.com';
export const GRAPH_ORIGIN = 'https://graph.microsoft.com';
export const GRAPH_DEFAULT_SCOPE = 'https://graph.microsoft.com/.default';
/** Graph's well-known application id, also accepted as a token audience. */
export const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';
/** Application permissions that allow reading a user's group memberships. */
export const GRAPH_MEMBERSHIP_PERMISSIONS = ['GroupMember.Read.All', 'Group.Read.All', 'Directory.Read.All', 'Directory.ReadWrite.All'];

export interface EntraGroup {
  /** Group object id (GUID): what the `groups` claim carries. */
  id: string;
  displayName: string;
}

export interface EntraUser extends PeerUser {
  /** UPN; also `preferred_username`. */
  username: string;
  /** Object id (default: a GUID derived from tenant and username). */
  oid?: string;
  email?: string;
  name: string;
  groups?: EntraGroup[];
  /** App roles assigned to the user (the `roles` claim). */
  roles?: string[];
  /** How overage is signalled past the threshold: Graph claim sources (default) or `hasgroups: true`. */
  overageStyle?: 'claim_sources' | 'hasgroups';
}

export interface EntraTenantOptions {
  tid: string;
  /** Verified domains, for home-realm discovery at /common (login_hint / domain_hint). */
  domains?: string[];
  users?: EntraUser[];
}

export interface EntraClient extends PeerClient {
  /** The app manifest's groupMembershipClaims: anything but false/'None' emits `groups`. */
  groupMembershipClaims?: boolean | 'SecurityGroup' | 'All' | 'ApplicationGroup' | 'DirectoryRole' | 'None';
  /** Graph application permissions granted to the app (default ['GroupMember.Read.All']). */
  appPermissions?: string[];
}

export interface EntraPeerOptions {
  internet: LoopbackInternet;
  tenants: EntraTenantOptions[];
  /** Registered in every tenant (a multi-tenant app). */
  clients: EntraClient[];
  /** More groups than this and the ID token carries an overage indicator instead (default 200). */
  groupsOverageThreshold?: number;
  graph?: {
    /** Caps Graph page sizes (whatever $top says), to force paging. */
    pageSize?: number;
  };
}

export interface EntraTenant extends OidcPeerHandle<EntraUser> {
  readonly tid: string;
  /** Registers or replaces the app in every tenant (groupMembershipClaims, appPermissions included). */
  setClient(client: EntraClient): Promise<void>;
  oidOf(username: string): string;
}

export interface GraphRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  status: number;
  /** Tenant of the presented token, if it was valid. */
  tid?: string;
  appId?: string;
}

export interface GraphFailure {
  /** HTTP status to answer (default 500). */
  status?: number;
  /** First page (0-based) that fails; earlier pages succeed (default 0). */
  fromPage?: number;
}

export interface GraphControl {
  readonly origin: string;
  readonly host: PeerHost;
  /** Page size cap (undefined: $top, else 100). */
  pageSize: number | undefined;
  /** Every Graph request, oldest first. */
  readonly requests: GraphRequest[];
  /** Replaces an app's Graph application permissions (e.g. [] → 403 Authorization_RequestDenied). */
  setAppPermissions(clientId: string, permissions: string[]): void;
  /** Makes Graph fail for a user (UPN or object id) until clearFailures(). */
  failUser(user: string, failure?: GraphFailure): void;
  clearFailures(): void;
  /** An app-only Graph token, as the tenant token endpoint would issue it. */
  appToken(tid: string, clientId: string, options?: { expiresIn?: number; permissions?: string[]; audience?: string }): Promise<string>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export interface EntraPeer extends EntraTenant {
  readonly origin: string;
  /** The first tenant's issuer. */
  readonly issuer: string;
  /** https://login.microsoftonline.com/common/v2.0 (discovery issuer: the {tenantid} template). */
  readonly commonAuthority: string;
  readonly organizationsAuthority: string;
  readonly tenants: ReadonlyMap<string, EntraTenant>;
  tenant(tid: string): EntraTenant;
  readonly graph: GraphControl;
  readonly host: PeerHost;
  /** Stops login.microsoftonline.com and graph.microsoft.com (connection refused). */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A GUID derived from the seed (version-4 shaped). */
export function guid(...seed: string[]): string {
  const bytes = digest('guid', ...seed).subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function graphError(res: ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, {
    error: {
      code,
      message,
      innerError: { date: new Date().toISOString().slice(0, 19), 'request-id': randomUUID(), 'client-request-id': randomUUID() },
    },
  });
}

/** Query string kept the way Graph writes it ($-prefixed keys and commas unencoded). */
function graphQuery(params: Array<[string, string]>): string {
  const encode = (value: string) => encodeURIComponent(value).replace(/%2C/gi, ',').replace(/%24/g, '$');
  return params.map(([key, value]) => `${encode(key)}=${encode(value)}`).join('&');
}

export async function startEntraPeer(options: EntraPeerOptions): Promise<EntraPeer> {
  const { internet } = options;
  if (options.tenants.length === 0) throw new TypeError('startEntraPeer: tenants must not be empty');
  const threshold = options.groupsOverageThreshold ?? 200;
  const clientsById = new Map(options.clients.map((client) => [client.client_id, client]));
  const permissions = new Map(options.clients.map((client) => [client.client_id, client.appPermissions ?? ['GroupMember.Read.All']]));

  const issuers = new Map<string, OidcIssuer<EntraUser>>();
  const tenants = new Map<string, EntraTenant>();
  const domains = new Map<string, string>();

  const oidOf = (tid: string, user: EntraUser) => user.oid ?? guid('oid', tid, user.username.toLowerCase());
  // Entra's `sub` is pairwise per application: an opaque 43-character base64url string.
  const pairwiseSub = (tid: string, oid: string, clientId: string) => digest('sub', tid, oid, clientId).toString('base64url');
  const groupsEnabled = (client: EntraClient | undefined) =>
    client?.groupMembershipClaims !== undefined && client.groupMembershipClaims !== false && client.groupMembershipClaims !== 'None';
  const acrValues = [...new Set(options.tenants.flatMap((tenant) => (tenant.users ?? []).flatMap((user) => (user.acr ? [user.acr] : []))))];

  async function signAppToken(tid: string, clientId: string, opts: { expiresIn?: number; permissions?: string[]; audience?: string } = {}): Promise<string> {
    const tenant = issuers.get(tid);
    if (!tenant) throw new TypeError(`unknown tenant ${tid}`);
    const roles = opts.permissions ?? permissions.get(clientId) ?? [];
    const now = Math.floor(Date.now() / 1000);
    const servicePrincipal = guid('sp', tid, clientId);
    return new SignJWT({
      aud: opts.audience ?? GRAPH_ORIGIN,
      iss: `https://sts.windows.net/${tid}/`,
      idp: `https://sts.windows.net/${tid}/`,
      appid: clientId,
      appidacr: '1',
      idtyp: 'app',
      oid: servicePrincipal,
      sub: servicePrincipal,
      tid,
      uti: randomBytes(16).toString('base64url'),
      ver: '1.0',
      ...(roles.length > 0 ? { roles } : {}),
    })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: tenant.key.kid })
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + (opts.expiresIn ?? 3599))
      .sign(tenant.key.privateKey);
  }

  /** POST /<tid>/oauth2/v2.0/token with grant_type=client_credentials (Graph app tokens). */
  async function clientCredentials(tid: string, req: Request, res: Response, form: URLSearchParams): Promise<void> {
    const basic = parseBasic(req.headers.authorization);
    const clientId = basic?.id ?? form.get('client_id') ?? '';
    const secret = basic?.secret ?? form.get('client_secret') ?? '';
    const client = clientsById.get(clientId);
    const traceId = randomUUID();
    if (!client) {
      sendJson(res, 400, {
        error: 'unauthorized_client',
        error_description: `AADSTS700016: Application with identifier '${clientId}' was not found in the directory '${tid}'. Trace ID: ${traceId}`,
        error_codes: [700016],
        trace_id: traceId,
      });
      return;
    }
    if (secret !== client.client_secret) {
      sendJson(res, 401, {
        error: 'invalid_client',
        error_description: `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'. Trace ID: ${traceId}`,
        error_codes: [7000215],
        trace_id: traceId,
      });
      return;
    }
    const scope = form.get('scope') ?? '';
    if (scope !== GRAPH_DEFAULT_SCOPE && scope !== `${GRAPH_APP_ID}/.default`) {
      sendJson(res, 400, {
        error: 'invalid_scope',
        error_description: `AADSTS1002012: The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI). Trace ID: ${traceId}`,
        error_codes: [1002012],
        trace_id: traceId,
      });
      return;
    }
    sendJson(res, 200, {
      token_type: 'Bearer',
      expires_in: 3599,
      ext_expires_in: 3599,
      access_token: await signAppToken(tid, clientId),
    });
  }

  for (const tenantOptions of options.tenants) {
    const { tid } = tenantOptions;
    for (const domain of tenantOptions.domains ?? []) domains.set(domain.toLowerCase(), tid);
    const issuer = await createOidcIssuer<EntraUser>({
      internet,
      issuer: `${ENTRA_ORIGIN}/${tid}/v2.0`,
      mountPath: `/${tid}`,
      routes: {
        authorization: '/oauth2/v2.0/authorize',
        token: '/oauth2/v2.0/token',
        jwks: '/discovery/v2.0/keys',
        userinfo: '/oidc/userinfo',
        end_session: '/oauth2/v2.0/logout',
        revocation: '/oauth2/v2.0/revoke',
      },
      clients: options.clients,
      users: tenantOptions.users ?? [],
      scopes: ['openid', 'profile', 'email', 'offline_access'],
      // As Entra v2.0: oid, name and preferred_username need the profile scope.
      claims: {
        openid: ['sub', 'tid', 'ver', 'uti', 'rh', 'groups', 'hasgroups', 'roles', 'acr', 'amr'],
        profile: ['oid', 'name', 'preferred_username'],
        email: ['email'],
      },
      acrValues,
      extraParams: ['domain_hint'],
      brand: 'Microsoft',
      cookiePrefix: tid,
      omitAuthorizationResponseIss: true,
      accountIdOf: (user) => oidOf(tid, user),
      pairwiseSubject: (oid, clientId) => pairwiseSub(tid, oid, clientId),
      claimsOf: (user, { clientId }) => {
        const oid = oidOf(tid, user);
        const claims: Record<string, unknown> = {
          tid,
          ver: '2.0',
          oid,
          name: user.name,
          preferred_username: user.username,
          uti: randomBytes(16).toString('base64url'),
          rh: `0.A${digest('rh', tid, clientId).toString('base64url').slice(0, 40)}.`,
          ...(user.email ? { email: user.email } : {}),
          ...(user.roles && user.roles.length > 0 ? { roles: user.roles } : {}),
        };
        const groups = user.groups ?? [];
        if (groupsEnabled(clientsById.get(clientId)) && groups.length > 0) {
          if (groups.length <= threshold) claims.groups = groups.map((group) => group.id);
          else if (user.overageStyle === 'hasgroups') claims.hasgroups = true;
          else {
            claims._claim_names = { groups: 'src1' };
            claims._claim_sources = { src1: { endpoint: `${GRAPH_ORIGIN}/v1.0/users/${oid}/getMemberObjects` } };
          }
        }
        return claims;
      },
      discovery: (metadata) => {
        Object.assign(metadata, {
          tenant_region_scope: 'NA',
          cloud_instance_name: 'microsoftonline.com',
          cloud_graph_host_name: 'graph.windows.net',
          msgraph_host: 'graph.microsoft.com',
        });
      },
      tokenHook: async (req, res, form) => {
        if (form.get('grant_type') !== 'client_credentials') return false;
        await clientCredentials(tid, req, res, form);
        return true;
      },
    });
    issuers.set(tid, issuer);
    tenants.set(tid, {
      tid,
      issuer: issuer.issuer,
      key: issuer.key,
      clients: issuer.clients,
      // A multi-tenant app: (re)registered in every tenant.
      setClient: (client) => setClient(client),
      removeClient: (clientId) => removeClient(clientId),
      users: issuer.users,
      logoutDeliveries: issuer.logoutDeliveries,
      setUser: issuer.setUser,
      removeUser: issuer.removeUser,
      signLogoutToken: issuer.signLogoutToken,
      backchannelLogout: issuer.backchannelLogout,
      sessionSid: issuer.sessionSid,
      subjectFor: issuer.subjectFor,
      oidOf(username) {
        const user = issuer.users.get(username.toLowerCase());
        if (!user) throw new TypeError(`unknown user ${username} in tenant ${tid}`);
        return oidOf(tid, user);
      },
    });
  }

  async function setClient(client: EntraClient): Promise<void> {
    clientsById.set(client.client_id, client);
    if (!permissions.has(client.client_id) || client.appPermissions) permissions.set(client.client_id, client.appPermissions ?? ['GroupMember.Read.All']);
    for (const issuer of issuers.values()) await issuer.setClient(client);
  }

  async function removeClient(clientId: string): Promise<void> {
    clientsById.delete(clientId);
    permissions.delete(clientId);
    for (const issuer of issuers.values()) await issuer.removeClient(clientId);
  }

  /** Finds a user anywhere: by UPN or object id. */
  function findUser(value: string): { tid: string; user: EntraUser } | undefined {
    const lower = value.toLowerCase();
    for (const [tid, issuer] of issuers) {
      for (const user of issuer.users.values()) {
        if (user.username.toLowerCase() === lower || oidOf(tid, user) === lower) return { tid, user };
      }
    }
    return undefined;
  }

  function homeTenant(loginHint: string | null, domainHint: string | null): string | undefined {
    if (loginHint) {
      const found = findUser(loginHint);
      if (found) return found.tid;
      const domain = loginHint.includes('@') ? loginHint.slice(loginHint.lastIndexOf('@') + 1).toLowerCase() : '';
      if (domains.has(domain)) return domains.get(domain);
    }
    if (domainHint) {
      const hinted = domainHint.toLowerCase();
      if (domains.has(hinted)) return domains.get(hinted);
      if (issuers.has(hinted)) return hinted;
    }
    return undefined;
  }

  const allKeys = (): JWK[] => [...issuers.values()].map((issuer) => ({ ...issuer.key.publicJwk, issuer: `${ENTRA_ORIGIN}/{tenantid}/v2.0` }));

  // ----- login.microsoftonline.com -----
  const login = express();
  login.disable('x-powered-by');
  const form = express.urlencoded({ extended: false, limit: '16kb' });

  for (const authority of ['common', 'organizations']) {
    const base = `${ENTRA_ORIGIN}/${authority}`;
    login.get(`/${authority}/v2.0/.well-known/openid-configuration`, (_req, res) => {
      sendJson(res, 200, {
        token_endpoint: `${base}/oauth2/v2.0/token`,
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
        jwks_uri: `${base}/discovery/v2.0/keys`,
        response_modes_supported: ['query', 'fragment', 'form_post'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        issuer: `${ENTRA_ORIGIN}/{tenantid}/v2.0`,
        request_uri_parameter_supported: false,
        userinfo_endpoint: `${GRAPH_ORIGIN}/oidc/userinfo`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        http_logout_supported: true,
        frontchannel_logout_supported: true,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
        tenant_region_scope: null,
        cloud_instance_name: 'microsoftonline.com',
        cloud_graph_host_name: 'graph.windows.net',
        msgraph_host: 'graph.microsoft.com',
      });
    });
    login.get(`/${authority}/discovery/v2.0/keys`, (_req, res) => { sendJson(res, 200, { keys: allKeys() }, { 'cache-control': 'max-age=86400' }); });

    // Home-realm discovery, then the tenant's own authorize endpoint with the same parameters.
    login.all(`/${authority}/oauth2/v2.0/authorize`, form, (req, res) => {
      const query = new URLSearchParams(req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '');
      const posted = req.method === 'POST' && typeof req.body?.username === 'string' ? String(req.body.username).trim() : null;
      const tid = homeTenant(posted ?? query.get('login_hint'), posted ? null : query.get('domain_hint'));
      if (!tid) {
        const action = `/${authority}/oauth2/v2.0/authorize?${query}`;
        const problem = posted === null ? undefined : "We couldn't find an account with that username.";
        const html = loginPage('Microsoft', action, posted ?? query.get('login_hint') ?? '', problem)
          .replace(/<label>Password[\s\S]*?<\/label>\n/, '');
        res.status(posted === null ? 200 : 400).type('html').set('cache-control', 'no-store').send(html);
        return;
      }
      if (posted) query.set('login_hint', posted);
      res.redirect(302, `${ENTRA_ORIGIN}/${tid}/oauth2/v2.0/authorize?${query}`);
    });

    // The code was issued by one tenant: redeem it there (a code unknown to a tenant is invalid_grant).
    login.post(`/${authority}/oauth2/v2.0/token`, (req, res, next) => {
      (async () => {
        const body = await readForm(req);
        if (body.get('grant_type') === 'client_credentials') {
          sendJson(res, 400, {
            error: 'invalid_request',
            error_description: `AADSTS90133: Client credentials are not supported on the /${authority} endpoint; use a tenant-specific endpoint.`,
            error_codes: [90133],
          });
          return;
        }
        let last: globalThis.Response | undefined;
        for (const tid of issuers.keys()) {
          last = await internalRequest(req, { path: `/${tid}/oauth2/v2.0/token`, body: body.toString(), mark: false });
          if (last.status !== 400) break;
          const error = (await last.clone().json().catch(() => ({}))) as { error?: string };
          if (error.error !== 'invalid_grant') break;
        }
        await relay(last!, res);
      })().catch(next);
    });

    login.get(`/${authority}/oauth2/v2.0/logout`, (req, res) => {
      const query = new URLSearchParams(req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '');
      let tid = [...issuers.keys()][0]!;
      const hint = query.get('id_token_hint');
      if (hint) {
        try {
          const claimed = decodeJwt(hint).tid;
          if (typeof claimed === 'string' && issuers.has(claimed)) tid = claimed;
        } catch {
          // Not a JWT: the tenant's own endpoint reports it.
        }
      }
      res.redirect(302, `${ENTRA_ORIGIN}/${tid}/oauth2/v2.0/logout?${query}`);
    });
  }

  for (const [tid, issuer] of issuers) {
    const tenantOptions = options.tenants.find((tenant) => tenant.tid === tid)!;
    // A verified domain works in place of the tenant id in the discovery URL.
    for (const domain of tenantOptions.domains ?? []) {
      login.get(`/${domain}/v2.0/.well-known/openid-configuration`, (req, res, next) => {
        internalRequest(req, { path: `/${tid}/v2.0/.well-known/openid-configuration`, mark: false })
          .then((response) => relay(response, res), next);
      });
    }
    login.use(`/${tid}`, issuer.router);
  }
  login.use((_req, res) => {
    sendJson(res, 400, { error: 'invalid_tenant', error_description: 'AADSTS90002: Tenant not found.', error_codes: [90002] });
  });

  // ----- graph.microsoft.com -----
  const graphRequests: GraphRequest[] = [];
  const failures = new Map<string, Required<GraphFailure>>();
  const graphJwks = () => createLocalJWKSet({ keys: [...issuers.values()].map((issuer) => issuer.key.publicJwk) });
  const graphControl = { pageSize: options.graph?.pageSize };

  async function authenticate(req: IncomingMessage): Promise<{ tid: string; appId: string; roles: string[] } | { status: number; code: string; message: string }> {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) return { status: 401, code: 'InvalidAuthenticationToken', message: 'Access token is empty.' };
    let claims: Record<string, unknown>;
    try {
      claims = decodeJwt(match[1]!);
    } catch {
      return { status: 401, code: 'InvalidAuthenticationToken', message: 'IDX14100: JWT is not well formed, there are no dots (.).' };
    }
    const tid = typeof claims.tid === 'string' ? claims.tid : '';
    const tenant = issuers.get(tid);
    if (!tenant) return { status: 401, code: 'InvalidAuthenticationToken', message: 'Access token validation failure. Invalid issuer or signature.' };
    try {
      const { payload, protectedHeader } = await jwtVerify(match[1]!, graphJwks(), {
        algorithms: ['RS256'],
        issuer: `https://sts.windows.net/${tid}/`,
      });
      if (protectedHeader.kid !== tenant.key.kid) throw new Error('signed by another tenant');
      const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
      if (!audiences.some((aud) => aud === GRAPH_ORIGIN || aud === `${GRAPH_ORIGIN}/` || aud === GRAPH_APP_ID)) {
        return { status: 401, code: 'InvalidAuthenticationToken', message: 'Access token validation failure. Invalid audience.' };
      }
      return { tid, appId: String(payload.appid ?? ''), roles: Array.isArray(payload.roles) ? payload.roles.map(String) : [] };
    } catch (error) {
      const expired = (error as { code?: string }).code === 'ERR_JWT_EXPIRED';
      return {
        status: 401,
        code: 'InvalidAuthenticationToken',
        message: expired ? 'Lifetime validation failed, the token is expired.' : 'Access token validation failure. Invalid issuer or signature.',
      };
    }
  }

  const graph = express();
  graph.disable('x-powered-by');
  graph.use(express.json({ limit: '16kb' }));
  graph.use((req, res, next) => {
    const entry: GraphRequest = { method: req.method, url: req.originalUrl, status: 0 };
    graphRequests.push(entry);
    res.on('finish', () => { entry.status = res.statusCode; });
    (async () => {
      const url = new URL(req.originalUrl, GRAPH_ORIGIN);
      const membership = /^\/v1\.0\/users\/([^/]+)\/(transitiveMemberOf|memberOf)(\/microsoft\.graph\.group)?$/.exec(url.pathname);
      const objects = /^\/v1\.0\/users\/([^/]+)\/(getMemberObjects|getMemberGroups)$/.exec(url.pathname);
      if (!(membership && req.method === 'GET') && !(objects && req.method === 'POST')) {
        graphError(res, 400, 'BadRequest', `Resource not found for the segment '${url.pathname.split('/').pop()}'.`);
        return;
      }
      const auth = await authenticate(req);
      if ('status' in auth) {
        graphError(res, auth.status, auth.code, auth.message);
        return;
      }
      entry.tid = auth.tid;
      entry.appId = auth.appId;
      if (!auth.roles.some((role) => GRAPH_MEMBERSHIP_PERMISSIONS.includes(role))) {
        graphError(res, 403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
        return;
      }
      const userKey = decodeURIComponent((membership ?? objects)![1]!);
      const found = findUser(userKey);
      if (!found || found.tid !== auth.tid) {
        graphError(res, 404, 'Request_ResourceNotFound', `Resource '${userKey}' does not exist or one of its queried reference-property objects are not present.`);
        return;
      }
      const oid = oidOf(found.tid, found.user);
      const groups = found.user.groups ?? [];
      const failure = failures.get(oid);

      if (objects) {
        if (failure) {
          graphError(res, failure.status, 'generalException', 'General exception while processing.');
          return;
        }
        sendJson(res, 200, {
          '@odata.context': `${GRAPH_ORIGIN}/v1.0/$metadata#Collection(Edm.String)`,
          value: groups.map((group) => group.id),
        });
        return;
      }

      const top = Number(url.searchParams.get('$top') ?? '100');
      if (!Number.isInteger(top) || top < 1 || top > 999) {
        graphError(res, 400, 'Request_UnsupportedQuery', 'Invalid page size specified.');
        return;
      }
      const size = Math.min(top, graphControl.pageSize ?? Number.POSITIVE_INFINITY);
      let offset = 0;
      const skiptoken = url.searchParams.get('$skiptoken');
      if (skiptoken) {
        try {
          const decoded = JSON.parse(Buffer.from(skiptoken, 'base64url').toString('utf8')) as { o?: unknown; u?: unknown };
          if (decoded.u !== oid || typeof decoded.o !== 'number') throw new Error('foreign skiptoken');
          offset = decoded.o;
        } catch {
          graphError(res, 400, 'Directory_InvalidSkipToken', 'The specified page token value has expired or is invalid.');
          return;
        }
      }
      if (failure && Math.floor(offset / size) >= failure.fromPage) {
        graphError(res, failure.status, failure.status === 503 ? 'serviceNotAvailable' : 'generalException', 'General exception while processing.');
        return;
      }
      const select = (url.searchParams.get('$select') ?? '').split(',').map((field) => field.trim()).filter(Boolean);
      const page = groups.slice(offset, offset + size).map((group) => {
        const full: Record<string, unknown> = {
          '@odata.type': '#microsoft.graph.group',
          id: group.id,
          displayName: group.displayName,
          description: null,
          mailEnabled: false,
          securityEnabled: true,
          groupTypes: [],
        };
        return select.length > 0
          ? Object.fromEntries(Object.entries(full).filter(([field]) => field === '@odata.type' || select.includes(field)))
          : full;
      });
      const body: Record<string, unknown> = {
        '@odata.context': `${GRAPH_ORIGIN}/v1.0/$metadata#directoryObjects${select.length > 0 ? `(${select.join(',')})` : ''}`,
        value: page,
      };
      if (offset + size < groups.length) {
        const params = [...url.searchParams].filter(([key]) => key !== '$skiptoken');
        params.push(['$skiptoken', Buffer.from(JSON.stringify({ o: offset + size, u: oid })).toString('base64url')]);
        body['@odata.nextLink'] = `${GRAPH_ORIGIN}${url.pathname}?${graphQuery(params)}`;
      }
      sendJson(res, 200, body);
    })().catch(next);
  });

  const loginHost = await hostOrigins(internet, { [ENTRA_ORIGIN]: login });
  const graphHost = await hostOrigins(internet, { [GRAPH_ORIGIN]: graph });

  const graphApi: GraphControl = {
    origin: GRAPH_ORIGIN,
    host: graphHost,
    get pageSize() { return graphControl.pageSize; },
    set pageSize(value) { graphControl.pageSize = value; },
    requests: graphRequests,
    setAppPermissions(clientId, granted) { permissions.set(clientId, [...granted]); },
    failUser(user, failure = {}) {
      const found = findUser(user);
      if (!found) throw new TypeError(`unknown Entra user ${user}`);
      failures.set(oidOf(found.tid, found.user), { status: failure.status ?? 500, fromPage: failure.fromPage ?? 0 });
    },
    clearFailures() { failures.clear(); },
    appToken: signAppToken,
    stop: graphHost.stop,
    start: graphHost.start,
  };

  const first = tenants.get(options.tenants[0]!.tid)!;
  return {
    ...first,
    origin: ENTRA_ORIGIN,
    commonAuthority: `${ENTRA_ORIGIN}/common/v2.0`,
    organizationsAuthority: `${ENTRA_ORIGIN}/organizations/v2.0`,
    tenants,
    tenant(tid) {
      const tenant = tenants.get(tid);
      if (!tenant) throw new TypeError(`unknown tenant ${tid}`);
      return tenant;
    },
    graph: graphApi,
    host: loginHost,
    async stop() { await loginHost.stop(); await graphHost.stop(); },
    async start() { await loginHost.start(); await graphHost.start(); },
    async close() { await loginHost.close(); await graphHost.close(); },
  };
}
