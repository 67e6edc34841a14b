// Google Workspace Admin SDK Directory API: the groups a person belongs to, read by a service
// account with domain-wide delegation acting as a Workspace admin. The service account proves
// itself with a JWT bearer assertion (RFC 7523 §2.1) signed by its private key.
import { SignJWT, importPKCS8 } from 'jose';

import { parseServiceAccountKey } from '../../config/index.ts';
import type { ServiceAccountKey } from '../../config/index.ts';
import { FederationError } from '../errors.ts';

export const DIRECTORY_SCOPE = 'https://www.googleapis.com/auth/admin.directory.group.readonly';

export interface DirectoryGroup {
  id: string;
  email: string;
  name?: string;
}

export interface GoogleDirectoryOptions {
  fetch: typeof fetch;
  now: () => number;
  key: ServiceAccountKey;
  adminEmail: string;
  tokenUrl: string;
  baseUrl: string;
  pageSize: number;
  maxPages?: number;
}

export interface GoogleDirectory {
  groupsOf(userEmail: string): Promise<DirectoryGroup[]>;
  token(): Promise<string>;
}

const TIMEOUT_MS = 5000;

export function createGoogleDirectory(options: GoogleDirectoryOptions): GoogleDirectory {
  let cached: { value: string; expiresAt: number } | undefined;
  let signingKey: Awaited<ReturnType<typeof importPKCS8>> | undefined;
  const origin = new URL(options.baseUrl).origin;

  async function token(): Promise<string> {
    if (cached && cached.expiresAt > options.now() + 60) return cached.value;
    signingKey ??= await importPKCS8(options.key.private_key, 'RS256');
    const now = options.now();
    const assertion = await new SignJWT({ scope: DIRECTORY_SCOPE })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(options.key.private_key_id ? { kid: options.key.private_key_id } : {}) })
      .setIssuer(options.key.client_email)
      .setSubject(options.adminEmail)
      .setAudience(options.tokenUrl)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(signingKey);
    const res = await options.fetch(options.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const body = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
    if (!res.ok || typeof body.access_token !== 'string') {
      throw new FederationError('ERR_FEDERATION_IDP_ERROR', `Google refused the service account: ${body.error ?? res.status}`, body.error_description);
    }
    cached = { value: body.access_token, expiresAt: now + (body.expires_in ?? 300) };
    return body.access_token;
  }

  return {
    token,
    async groupsOf(userEmail) {
      const bearer = await token();
      const groups: DirectoryGroup[] = [];
      let pageToken: string | undefined;
      for (let page = 0; page === 0 || pageToken; page += 1) {
        if (page >= (options.maxPages ?? 100)) throw new FederationError('ERR_FEDERATION_IDP_ERROR', 'the Directory API returned more pages of groups than allowed');
        const url = new URL('/admin/directory/v1/groups', origin);
        url.searchParams.set('userKey', userEmail);
        url.searchParams.set('maxResults', String(options.pageSize));
        if (pageToken) url.searchParams.set('pageToken', pageToken);
        const res = await options.fetch(url, { headers: { authorization: `Bearer ${bearer}`, accept: 'application/json' }, signal: AbortSignal.timeout(TIMEOUT_MS) });
        const body = (await res.json().catch(() => ({}))) as {
          groups?: { id?: unknown; email?: unknown; name?: unknown }[];
          nextPageToken?: string;
          error?: { code?: number; message?: string };
        };
        if (!res.ok) {
          throw new FederationError('ERR_FEDERATION_IDP_ERROR', `the Directory API refused the group look-up: ${body.error?.code ?? res.status}`, body.error?.message);
        }
        for (const g of body.groups ?? []) {
          if (typeof g.email === 'string') {
            groups.push({ id: typeof g.id === 'string' ? g.id : g.email, email: g.email, ...(typeof g.name === 'string' ? { name: g.name } : {}) });
          }
        }
        pageToken = body.nextPageToken;
      }
      return groups;
    },
  };
}

/** An identity provider's `directory` settings (OIDC and SAML Google Workspace presets alike). */
export interface GoogleDirectorySettings {
  enabled: boolean;
  serviceAccountKey: string;
  adminEmail: string;
  tokenUrl: string;
  baseUrl: string;
  pageSize: number;
}

const directories = new WeakMap<GoogleDirectorySettings, GoogleDirectory>();

/**
 * The Directory client for an IdP's settings, made once per settings object; undefined when the
 * directory is off or the key does not parse (config validation reports that with its path).
 */
export function directoryFor(
  settings: GoogleDirectorySettings | undefined,
  context: { fetch: typeof fetch; now: () => number },
): GoogleDirectory | undefined {
  if (!settings?.enabled) return undefined;
  let directory = directories.get(settings);
  if (!directory) {
    const key = parseServiceAccountKey(settings.serviceAccountKey);
    if (!key) return undefined;
    directory = createGoogleDirectory({
      fetch: context.fetch, now: context.now, key, adminEmail: settings.adminEmail,
      tokenUrl: settings.tokenUrl, baseUrl: settings.baseUrl, pageSize: settings.pageSize,
    });
    directories.set(settings, directory);
  }
  return directory;
}
