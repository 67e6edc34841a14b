// Google (Workspace and consumer accounts) as a test peer, on the loopback internet:
// - https://accounts.google.com: the OpenID Provider (issuer https://accounts.google.com,
//   authorize at /o/oauth2/v2/auth), ID tokens like Google's: numeric `sub`, `email`,
//   `email_verified`, `name`, `given_name`, `family_name`, `hd` for Workspace users only,
//   `azp` = client id, `at_hash`. The `hd` authorization parameter is a hint, never enforced
//   (enforcing it is the relying party's job).
// - https://oauth2.googleapis.com/token: the token endpoint the discovery document names; the code
//   exchange goes to the provider, and service accounts get access tokens with the JWT bearer
//   grant (RFC 7523), domain-wide delegation through `sub`.
// - https://www.googleapis.com/oauth2/v3/certs (JWKS) and
//   https://openidconnect.googleapis.com/v1/userinfo.
// - https://admin.googleapis.com: the Admin SDK Directory API `groups?userKey=` with paging and
//   Google's error shapes.
import { generateKeyPair as generateNodeKeyPair, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

import express from 'express';
import type { Request, Response } from 'express';
import { SignJWT, decodeJwt, decodeProtectedHeader, importJWK, importPKCS8, importSPKI, jwtVerify } from 'jose';
import type { CryptoKey, JWK } from 'jose';

import { hostOrigins, internalRequest, readForm, relay, sendJson } from './host.ts';
import type { PeerHost } from './host.ts';
import type { LoopbackInternet } from './internet.ts';
import { createOidcIssuer, digest } from './oidc-issuer.ts';
import type { OidcPeerHandle, PeerClient, PeerUser } from './oidc-issuer.ts';

export const GOOGLE_ISSUER = 'https://accounts.google.com';
export const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';
export const DIRECTORY_GROUP_READONLY = 'https://www.googleapis.com/auth/admin.directory.group.readonly';
/** Scopes that allow listing a user's groups. */
export const DIRECTORY_GROUP_SCOPES = [
  DIRECTORY_GROUP_READONLY,
  'https://www.googleapis.com/auth/admin.directory.group',
  'https://www.googleapis.com/auth/admin.directory.group.member.readonly',
];
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

export interface GoogleUser extends PeerUser {
  /** Usually the email address. */
  username: string;
  /** Numeric Google account id (default: 21 digits derived from the email). */
  sub?: string;
  email: string;
  emailVerified?: boolean;
  name: string;
  givenName?: string;
  familyName?: string;
  picture?: string;
  /** Workspace domain: present for Workspace accounts, absent for consumer (gmail.com) ones. */
  hd?: string;
  /** A Workspace admin: may be impersonated (domain-wide delegation) to read the Directory. */
  admin?: boolean;
}

export interface GoogleServiceAccount {
  client_email: string;
  /** The service account's public key: KeyObject, CryptoKey, JWK or SPKI PEM. */
  publicKey: KeyObject | CryptoKey | JWK | string;
  /** Scopes domain-wide delegation grants (default: Directory group read-only). */
  allowedScopes?: string[];
  /** Domain-wide delegation enabled (default true): needed to impersonate (`sub`). */
  delegation?: boolean;
}

export interface GoogleDirectoryGroup {
  /** Directory group id (default: derived from the email). */
  id?: string;
  email: string;
  name: string;
  /** Member email addresses (direct members). */
  members: string[];
}

export interface GooglePeerOptions {
  internet: LoopbackInternet;
  clients: PeerClient[];
  users?: GoogleUser[];
  serviceAccounts?: GoogleServiceAccount[];
  directoryGroups?: GoogleDirectoryGroup[];
  directory?: {
    /** Caps maxResults (Google's own cap is 200), to force paging. */
    pageSize?: number;
  };
}

/** The JSON key file Google issues for a service account. */
export interface GoogleServiceAccountKeyFile {
  type: 'service_account';
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  auth_uri: string;
  token_uri: string;
  auth_provider_x509_cert_url: string;
  client_x509_cert_url: string;
  universe_domain: string;
}

export interface DirectoryRequest {
  method: string;
  url: string;
  status: number;
  /** Service account and impersonated admin of the token, when valid. */
  clientEmail?: string;
  subject?: string;
}

export interface DirectoryFailure {
  status?: number;
  fromPage?: number;
}

export interface GoogleDirectoryControl {
  readonly origin: string;
  readonly host: PeerHost;
  pageSize: number | undefined;
  readonly requests: DirectoryRequest[];
  /** Makes the groups listing fail for a user (email) until clearFailures(). */
  failUser(email: string, failure?: DirectoryFailure): void;
  clearFailures(): void;
  setGroups(groups: GoogleDirectoryGroup[]): void;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export interface GooglePeer extends OidcPeerHandle<GoogleUser> {
  readonly host: PeerHost;
  readonly directory: GoogleDirectoryControl;
  /** Registers (or replaces) a service account. */
  addServiceAccount(account: GoogleServiceAccount): Promise<void>;
  /** Access tokens issued to service accounts, by token. */
  readonly serviceAccountTokens: ReadonlyMap<string, ServiceAccountToken>;
  /** Stops accounts.google.com, oauth2/www/openidconnect.googleapis.com and the Directory. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface ServiceAccountToken {
  clientEmail: string;
  subject?: string;
  scopes: string[];
  expiresAt: number;
}

const generateRsa = promisify(generateNodeKeyPair);

/** A service account key pair and the JSON key file Google would issue for it (generated now, never committed). */
export async function createServiceAccountKey(options: {
  clientEmail?: string;
  projectId?: string;
  allowedScopes?: string[];
  delegation?: boolean;
} = {}): Promise<{ keyFile: GoogleServiceAccountKeyFile; json: string; privateKey: KeyObject; publicKey: KeyObject; serviceAccount: GoogleServiceAccount }> {
  const projectId = options.projectId ?? 'agentgate-test';
  const clientEmail = options.clientEmail ?? `directory-reader@${projectId}.iam.gserviceaccount.com`;
  const { privateKey, publicKey } = await generateRsa('rsa', { modulusLength: 2048 });
  const keyFile: GoogleServiceAccountKeyFile = {
    type: 'service_account',
    project_id: projectId,
    private_key_id: randomBytes(20).toString('hex'),
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: clientEmail,
    client_id: [...digest('sa', clientEmail).subarray(0, 21)].map((byte) => String(byte % 10)).join('').replace(/^0/, '1'),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: GOOGLE_TOKEN_URI,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(clientEmail)}`,
    universe_domain: 'googleapis.com',
  };
  return {
    keyFile,
    json: JSON.stringify(keyFile, null, 2),
    privateKey,
    publicKey,
    serviceAccount: {
      client_email: clientEmail,
      publicKey,
      ...(options.allowedScopes ? { allowedScopes: options.allowedScopes } : {}),
      ...(options.delegation !== undefined ? { delegation: options.delegation } : {}),
    },
  };
}

/** A Google-shaped numeric account id. */
export function googleSub(email: string): string {
  return `1${[...digest('google-sub', email.toLowerCase()).subarray(0, 20)].map((byte) => String(byte % 10)).join('')}`;
}

function googleError(res: Response, status: number, message: string, reason: string, extra: Record<string, unknown> = {}): void {
  const statusText = ({ 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 500: 'INTERNAL', 503: 'UNAVAILABLE' } as Record<number, string>)[status] ?? 'UNKNOWN';
  sendJson(res, status, {
    error: { code: status, message, errors: [{ message, domain: 'global', reason, ...extra }], status: statusText },
  }, status === 401 ? { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' } : {});
}

export async function startGooglePeer(options: GooglePeerOptions): Promise<GooglePeer> {
  const { internet } = options;
  const subOf = (user: GoogleUser) => user.sub ?? googleSub(user.email);
  const acrValues = [...new Set((options.users ?? []).flatMap((user) => (user.acr ? [user.acr] : [])))];

  const google = await createOidcIssuer<GoogleUser>({
    internet,
    issuer: GOOGLE_ISSUER,
    mountPath: '',
    routes: {
      authorization: '/o/oauth2/v2/auth',
      token: '/token',
      jwks: '/oauth2/v3/certs',
      userinfo: '/v1/userinfo',
      end_session: '/logout',
      revocation: '/revoke',
    },
    clients: options.clients,
    users: options.users ?? [],
    scopes: ['openid', 'profile', 'email'],
    claims: {
      openid: ['sub', 'azp', 'at_hash', 'hd', 'acr', 'amr'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'picture', 'locale'],
    },
    acrValues,
    extraParams: ['hd', 'access_type', 'include_granted_scopes'],
    brand: 'Google',
    accountIdOf: subOf,
    claimsOf: (user, { clientId, use, accessToken }) => ({
      ...(use === 'id_token' ? { azp: clientId } : {}),
      // oidc-provider hashes at_hash/c_hash itself (OIDC Core §3.1.3.6): it takes the raw token.
      ...(use === 'id_token' && accessToken ? { at_hash: accessToken } : {}),
      email: user.email,
      email_verified: user.emailVerified ?? true,
      name: user.name,
      given_name: user.givenName,
      family_name: user.familyName,
      picture: user.picture,
      ...(user.hd ? { hd: user.hd } : {}),
    }),
    discovery: (metadata) => {
      Object.assign(metadata, {
        token_endpoint: GOOGLE_TOKEN_URI,
        jwks_uri: 'https://www.googleapis.com/oauth2/v3/certs',
        userinfo_endpoint: 'https://openidconnect.googleapis.com/v1/userinfo',
        revocation_endpoint: 'https://oauth2.googleapis.com/revoke',
        device_authorization_endpoint: 'https://oauth2.googleapis.com/device/code',
      });
    },
  });

  // ----- service accounts (oauth2.googleapis.com/token, JWT bearer) -----
  const serviceAccounts = new Map<string, { account: GoogleServiceAccount; key: KeyObject | CryptoKey }>();
  async function addServiceAccount(account: GoogleServiceAccount): Promise<void> {
    const { publicKey } = account;
    const key = typeof publicKey === 'string'
      ? await importSPKI(publicKey, 'RS256')
      : 'kty' in publicKey && typeof publicKey.kty === 'string'
        ? await importJWK(publicKey as JWK, 'RS256') as CryptoKey
        : publicKey as KeyObject | CryptoKey;
    serviceAccounts.set(account.client_email, { account, key });
  }
  for (const account of options.serviceAccounts ?? []) await addServiceAccount(account);
  const tokens = new Map<string, ServiceAccountToken>();

  async function jwtBearer(res: Response, form: URLSearchParams): Promise<void> {
    const refuse = (status: number, error: string, description: string) =>
      sendJson(res, status, { error, error_description: description });
    const assertion = form.get('assertion') ?? '';
    let claims: Record<string, unknown>;
    try {
      decodeProtectedHeader(assertion);
      claims = decodeJwt(assertion);
    } catch {
      refuse(400, 'invalid_grant', 'Invalid JWT: Failed audience check. The right audience is https://oauth2.googleapis.com/token');
      return;
    }
    const registered = serviceAccounts.get(String(claims.iss ?? ''));
    if (!registered) {
      refuse(400, 'invalid_grant', 'Invalid grant: account not found');
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    try {
      await jwtVerify(assertion, registered.key, { algorithms: ['RS256'], issuer: registered.account.client_email });
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'ERR_JWT_EXPIRED') refuse(400, 'invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
      else refuse(400, 'invalid_grant', 'Invalid JWT Signature.');
      return;
    }
    if (claims.aud !== GOOGLE_TOKEN_URI) {
      refuse(400, 'invalid_grant', `Invalid JWT: Failed audience check. The right audience is ${GOOGLE_TOKEN_URI}`);
      return;
    }
    const { iat, exp } = claims;
    if (typeof iat !== 'number' || typeof exp !== 'number' || exp - iat > 3600 || exp <= iat || iat > now + 300) {
      refuse(400, 'invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
      return;
    }
    const scopes = String(claims.scope ?? '').split(/\s+/).filter(Boolean);
    if (scopes.length === 0) {
      refuse(400, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
      return;
    }
    const subject = typeof claims.sub === 'string' ? claims.sub : undefined;
    const allowed = registered.account.allowedScopes ?? [DIRECTORY_GROUP_READONLY];
    if (subject !== undefined) {
      if (registered.account.delegation === false || scopes.some((scope) => !allowed.includes(scope))) {
        refuse(401, 'unauthorized_client', 'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.');
        return;
      }
      if (!google.users.get(subject.toLowerCase())) {
        refuse(400, 'invalid_grant', 'Invalid email or User ID');
        return;
      }
    }
    const accessToken = `ya29.${randomBytes(48).toString('base64url')}`;
    tokens.set(accessToken, {
      clientEmail: registered.account.client_email,
      ...(subject !== undefined ? { subject } : {}),
      scopes,
      expiresAt: now + 3599,
    });
    sendJson(res, 200, { access_token: accessToken, expires_in: 3599, token_type: 'Bearer' });
  }

  const accounts = express();
  accounts.disable('x-powered-by');
  accounts.use('/', google.router);

  const oauth2 = express();
  oauth2.disable('x-powered-by');
  oauth2.post('/token', (req: Request, res: Response, next) => {
    (async () => {
      const form = await readForm(req);
      if (form.get('grant_type') === JWT_BEARER) {
        await jwtBearer(res, form);
        return;
      }
      // The code exchange (and refresh) belongs to accounts.google.com's provider.
      await relay(await internalRequest(req, { path: '/token', host: 'accounts.google.com', body: form.toString(), mark: false }), res);
    })().catch(next);
  });
  oauth2.post('/revoke', (req, res, next) => {
    readForm(req)
      .then((form) => internalRequest(req, { path: '/revoke', host: 'accounts.google.com', body: form.toString(), mark: false }))
      .then((response) => relay(response, res), next);
  });
  oauth2.use((_req, res) => { sendJson(res, 404, { error: 'not_found' }); });

  const www = express();
  www.disable('x-powered-by');
  www.get('/oauth2/v3/certs', (_req, res) => { sendJson(res, 200, { keys: [google.key.publicJwk] }, { 'cache-control': 'public, max-age=21600' }); });
  www.use((_req, res) => { sendJson(res, 404, { error: 'not_found' }); });

  const openidconnect = express();
  openidconnect.disable('x-powered-by');
  openidconnect.get('/v1/userinfo', (req, res, next) => {
    internalRequest(req, { path: '/v1/userinfo', host: 'accounts.google.com', mark: false }).then((response) => relay(response, res), next);
  });

  // ----- Directory API (admin.googleapis.com) -----
  let directoryGroups = (options.directoryGroups ?? []).map((group) => ({ ...group, id: group.id ?? digest('group', group.email).toString('hex').slice(0, 15) }));
  const directoryRequests: DirectoryRequest[] = [];
  const failures = new Map<string, Required<DirectoryFailure>>();
  const directoryControl = { pageSize: options.directory?.pageSize };

  const directory = express();
  directory.disable('x-powered-by');
  directory.use((req, res) => {
    const entry: DirectoryRequest = { method: req.method, url: req.originalUrl, status: 0 };
    directoryRequests.push(entry);
    res.on('finish', () => { entry.status = res.statusCode; });
    const url = new URL(req.originalUrl, 'https://admin.googleapis.com');
    if (req.method !== 'GET' || url.pathname !== '/admin/directory/v1/groups') {
      googleError(res, 404, 'Not Found', 'notFound');
      return;
    }
    const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const token = match ? tokens.get(match[1]!) : undefined;
    if (!token || token.expiresAt <= Math.floor(Date.now() / 1000)) {
      googleError(res, 401, 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.', 'authError', { location: 'Authorization', locationType: 'header' });
      return;
    }
    entry.clientEmail = token.clientEmail;
    if (token.subject) entry.subject = token.subject;
    if (!token.scopes.some((scope) => DIRECTORY_GROUP_SCOPES.includes(scope))) {
      googleError(res, 403, 'Request had insufficient authentication scopes.', 'insufficientPermissions');
      return;
    }
    // Without delegation the service account acts as itself, which has no Workspace admin role.
    const admin = token.subject ? google.users.get(token.subject.toLowerCase()) : undefined;
    if (!admin?.admin) {
      googleError(res, 403, 'Not Authorized to access this resource/api', 'forbidden');
      return;
    }
    const userKey = url.searchParams.get('userKey');
    if (!userKey) {
      googleError(res, 400, 'Missing required field: userKey or domain/customer', 'required');
      return;
    }
    const member = [...google.users.values()].find((user) => user.email.toLowerCase() === userKey.toLowerCase() || subOf(user) === userKey);
    if (!member) {
      googleError(res, 404, 'Resource Not Found: userKey', 'notFound');
      return;
    }
    const email = member.email.toLowerCase();
    const groups = directoryGroups.filter((group) => group.members.some((address) => address.toLowerCase() === email));
    const maxResults = Math.min(Number(url.searchParams.get('maxResults') ?? '200') || 200, 200, directoryControl.pageSize ?? 200);
    let offset = 0;
    const pageToken = url.searchParams.get('pageToken');
    if (pageToken) {
      try {
        const decoded = JSON.parse(Buffer.from(pageToken, 'base64url').toString('utf8')) as { o?: unknown; u?: unknown };
        if (decoded.u !== email || typeof decoded.o !== 'number') throw new Error('foreign page token');
        offset = decoded.o;
      } catch {
        googleError(res, 400, 'Invalid Input: pageToken', 'invalid');
        return;
      }
    }
    const failure = failures.get(email);
    if (failure && Math.floor(offset / maxResults) >= failure.fromPage) {
      googleError(res, failure.status, failure.status === 503 ? 'The service is currently unavailable.' : 'Internal error encountered.', failure.status === 503 ? 'backendError' : 'internalError');
      return;
    }
    const page = groups.slice(offset, offset + maxResults);
    const body: Record<string, unknown> = {
      kind: 'admin#directory#groups',
      etag: `"${digest('etag', email, String(offset)).toString('base64url').slice(0, 27)}"`,
      groups: page.map((group) => ({
        kind: 'admin#directory#group',
        id: group.id,
        etag: `"${digest('etag', group.id).toString('base64url').slice(0, 27)}"`,
        email: group.email,
        name: group.name,
        directMembersCount: String(group.members.length),
        description: '',
        adminCreated: true,
      })),
    };
    if (page.length === 0) delete body.groups;
    if (offset + maxResults < groups.length) body.nextPageToken = Buffer.from(JSON.stringify({ o: offset + maxResults, u: email })).toString('base64url');
    sendJson(res, 200, body);
  });

  const loginHost = await hostOrigins(internet, {
    [GOOGLE_ISSUER]: accounts,
    'https://oauth2.googleapis.com': oauth2,
    'https://www.googleapis.com': www,
    'https://openidconnect.googleapis.com': openidconnect,
  });
  const directoryHost = await hostOrigins(internet, { 'https://admin.googleapis.com': directory });

  const directoryApi: GoogleDirectoryControl = {
    origin: 'https://admin.googleapis.com',
    host: directoryHost,
    get pageSize() { return directoryControl.pageSize; },
    set pageSize(value) { directoryControl.pageSize = value; },
    requests: directoryRequests,
    failUser(email, failure = {}) { failures.set(email.toLowerCase(), { status: failure.status ?? 500, fromPage: failure.fromPage ?? 0 }); },
    clearFailures() { failures.clear(); },
    setGroups(groups) {
      directoryGroups = groups.map((group) => ({ ...group, id: group.id ?? digest('group', group.email).toString('hex').slice(0, 15) }));
    },
    stop: directoryHost.stop,
    start: directoryHost.start,
  };

  return {
    issuer: GOOGLE_ISSUER,
    key: google.key,
    clients: google.clients,
    setClient: google.setClient,
    removeClient: google.removeClient,
    users: google.users,
    logoutDeliveries: google.logoutDeliveries,
    setUser: google.setUser,
    removeUser: google.removeUser,
    signLogoutToken: google.signLogoutToken,
    backchannelLogout: google.backchannelLogout,
    sessionSid: google.sessionSid,
    subjectFor: google.subjectFor,
    host: loginHost,
    directory: directoryApi,
    addServiceAccount,
    serviceAccountTokens: tokens,
    async stop() { await loginHost.stop(); await directoryHost.stop(); },
    async start() { await loginHost.start(); await directoryHost.start(); },
    async close() { await loginHost.close(); await directoryHost.close(); },
  };
}

/** Signs a service-account assertion the way Google's client libraries do (for tests that play the gateway's part). */
export async function signServiceAccountAssertion(
  keyFile: Pick<GoogleServiceAccountKeyFile, 'client_email' | 'private_key' | 'private_key_id'>,
  claims: { scope: string; sub?: string; [claim: string]: unknown },
  options: { lifetime?: number; key?: KeyObject | CryptoKey } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const key = options.key ?? await importPKCS8(keyFile.private_key, 'RS256');
  return new SignJWT({ iss: keyFile.client_email, aud: GOOGLE_TOKEN_URI, iat: now, exp: now + (options.lifetime ?? 3600), ...claims })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: keyFile.private_key_id })
    .sign(key);
}
