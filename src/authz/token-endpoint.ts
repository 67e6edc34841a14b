// The token endpoint's front door. The token exchange is the gateway's hot path, and oidc-provider's
// koa pipeline (body parsing, parameter assembly, client authentication, dispatch) costs more per
// request than the exchange's own verify + sign; so grants the gateway implements itself ("lean
// grants": RFC 8693 token exchange) are served here directly, with the same steps in the same
// order and the same errors as oidc-provider's token endpoint (lib/actions/token.js): no-store;
// form body only (56 KiB, Content-Length must match); allow-listed parameters, empty = absent;
// client authentication (client-auth.ts); one grant_type; the grant allowed for the client;
// duplicates refused except where the grant allows them; scope syntax; then the grant. Every other
// grant, and anything that is not a form POST, goes to oidc-provider untouched (the body it was
// read from is replayed to it).
import type { IncomingMessage, ServerResponse } from 'node:http';

import type Provider from 'oidc-provider';

import type { Logger, Metrics } from '../ops/index.ts';
import { StoreUnavailableError } from '../store/index.ts';
import { CLIENT_AUTH_PARAMETERS } from './client-auth.ts';
import type { AuthenticatedClient, ClientAuthenticator } from './client-auth.ts';
import { replayRequestBody } from './oidc-provider-internals.ts';

/** oidc-provider's body limit. */
const BODY_LIMIT = 56 * 1024;

/** Scope syntax of RFC 6749 §3.3 (oidc-provider's is_valid_scope). */
const SCOPE_SYNTAX = /^[\x21\x23-\x5B\x5D-\x7E]+(?: [\x21\x23-\x5B\x5D-\x7E]+)*$/;

export type TokenParams = Readonly<Record<string, string | string[] | undefined>>;

export interface LeanGrantRequest {
  client: AuthenticatedClient;
  /** The grant's allow-listed parameters; only those it allows to repeat may be arrays. */
  params: TokenParams;
  /** The DPoP header, if sent. */
  dpop: string | undefined;
  method: string;
  /** The token endpoint URL as this request reached it (what a DPoP proof's htu names). */
  url: string;
}

export interface LeanGrantResponse {
  status: number;
  body: Record<string, unknown>;
}

export interface LeanGrant {
  parameters: readonly string[];
  allowedDuplicates: readonly string[];
  handle(request: LeanGrantRequest): Promise<LeanGrantResponse>;
}

export interface TokenEndpointDeps {
  issuer: string;
  trustProxy: boolean;
  provider: Provider;
  clients: ClientAuthenticator;
  /** Serves what the front does not: oidc-provider's koa callback. */
  fallback: (req: IncomingMessage, res: ServerResponse) => void;
  grants: ReadonlyMap<string, LeanGrant>;
  logger: Logger;
  metrics?: Metrics;
}

/** An error the front renders: oidc-provider's errors and ours carry these. */
interface OAuthShaped {
  error?: unknown;
  error_description?: unknown;
  status?: unknown;
  statusCode?: unknown;
  expose?: unknown;
}

const isForm = (req: IncomingMessage) =>
  /^application\/x-www-form-urlencoded\s*(;|$)/i.test(req.headers['content-type'] ?? '');

class BodyError extends Error {}

function readBody(req: IncomingMessage): Promise<Buffer> {
  const header = req.headers['content-length'];
  const length = header === undefined ? undefined : Number(header);
  if (length !== undefined && length > BODY_LIMIT) return Promise.reject(new BodyError('request entity too large'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const fail = (message: string) => {
      req.off('data', onData);
      req.resume(); // drain the rest; the answer goes out now
      reject(new BodyError(message));
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > BODY_LIMIT) fail('request entity too large');
      else if (length !== undefined && received > length) fail('request size did not match content length');
      else chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      if (length !== undefined && received !== length) reject(new BodyError('request size did not match content length'));
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
    });
    req.once('error', reject);
  });
}

/** application/x-www-form-urlencoded → name → value(s), repeated names as arrays. */
function parseForm(body: Buffer): Map<string, string[]> {
  const params = new Map<string, string[]>();
  for (const [name, value] of new URLSearchParams(body.toString('utf8'))) {
    const values = params.get(name);
    if (values) values.push(value);
    else params.set(name, [value]);
  }
  return params;
}

const list = (names: readonly string[]) =>
  new Intl.ListFormat('en', { type: 'conjunction' }).format(names.map((name) => `'${name}'`));

function rejectDupes(params: Record<string, string | string[] | undefined>, names: Iterable<string>): void {
  const repeated = [...names].filter((name) => Array.isArray(params[name]));
  if (repeated.length > 0) {
    throw new OAuthRefusal(400, 'invalid_request', `${list(repeated)} ${repeated.length === 1 ? 'parameter' : 'parameters'} must not be provided twice`);
  }
}

class OAuthRefusal extends Error {
  readonly status: number;
  readonly error: string;

  constructor(status: number, error: string, description: string) {
    super(description);
    this.status = status;
    this.error = error;
  }
}

function render(error: unknown): { status: number; error: string; description: string } | undefined {
  if (error instanceof OAuthRefusal) return { status: error.status, error: error.error, description: error.message };
  if (error instanceof StoreUnavailableError) {
    return { status: 503, error: 'temporarily_unavailable', description: 'the gateway cannot reach its session store; retry shortly' };
  }
  const e = error as OAuthShaped;
  const status = typeof e?.statusCode === 'number' ? e.statusCode : typeof e?.status === 'number' ? e.status : undefined;
  if (e && typeof e.error === 'string' && status !== undefined && (status < 500 || e.expose === true)) {
    return { status, error: e.error, description: typeof e.error_description === 'string' ? e.error_description : e.error };
  }
  return undefined;
}

/** The URL the client addressed: proxy headers count only when the gateway trusts its proxy. */
function requestUrl(req: IncomingMessage, trustProxy: boolean): string {
  const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value)?.split(',')[0]?.trim();
  const encrypted = Boolean((req.socket as { encrypted?: boolean }).encrypted);
  const proto = (trustProxy && first(req.headers['x-forwarded-proto'])) || (encrypted ? 'https' : 'http');
  const host = (trustProxy && first(req.headers['x-forwarded-host'])) || req.headers.host || '';
  return `${proto}://${host}${(req.url ?? '').split('?')[0]}`;
}

export function createTokenEndpoint(deps: TokenEndpointDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { grants, logger } = deps;

  function send(res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
    if (res.headersSent) return;
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
    res.end(JSON.stringify(body));
  }

  // Per grant, once: the parameters it reads and those that must not repeat.
  const shapes = new Map([...grants].map(([grantType, grant]) => {
    const allowed = [...new Set(['grant_type', ...CLIENT_AUTH_PARAMETERS, ...grant.parameters])];
    return [grantType, { allowed, single: allowed.filter((name) => !grant.allowedDuplicates.includes(name)) }];
  }));

  async function serve(req: IncomingMessage, res: ServerResponse, grantType: string, grant: LeanGrant, form: Map<string, string[]>): Promise<void> {
    const { allowed, single } = shapes.get(grantType)!;
    // Allow-listed parameters only, as oidc-provider assembles them; an empty value is absent.
    const params: Record<string, string | string[] | undefined> = {};
    for (const name of allowed) {
      const values = form.get(name)?.filter((value) => value !== '');
      params[name] = !values || values.length === 0 ? undefined : values.length === 1 ? values[0] : values;
    }
    rejectDupes(params, CLIENT_AUTH_PARAMETERS);
    const url = requestUrl(req, deps.trustProxy);
    const client = await deps.clients.authenticate({
      authorization: req.headers.authorization,
      params: params as Record<string, string | undefined>,
      audiences: [url, `${deps.issuer}/token`],
    });
    rejectDupes(params, ['grant_type']);
    if (!(client.metadata.grant_types ?? ['authorization_code']).includes(grantType)) {
      throw new OAuthRefusal(400, 'invalid_request', 'requested grant type is not allowed for this client');
    }
    rejectDupes(params, single);
    const { scope } = params;
    if (scope !== undefined && (typeof scope !== 'string' || !SCOPE_SYNTAX.test(scope))) {
      throw new OAuthRefusal(400, 'invalid_scope', 'scope contains invalid characters');
    }
    const dpop = req.headers.dpop;
    const { status, body } = await grant.handle({
      client, params, dpop: Array.isArray(dpop) ? dpop.join(', ') : dpop, method: req.method ?? 'POST', url,
    });
    send(res, status, body);
    if (status === 200) deps.metrics?.tokensIssued.inc({ grant_type: grantType });
  }

  function fail(req: IncomingMessage, res: ServerResponse, error: unknown): void {
    const known = render(error);
    if (!known) {
      logger.error({ reqId: (req as { id?: unknown }).id, err: { name: (error as Error)?.name, message: (error as Error)?.message } }, 'authorization server error');
      send(res, 500, { error: 'server_error', error_description: 'oops! something went wrong' });
      return;
    }
    // RFC 6749 §5.2: a client that tried HTTP authentication gets the challenge back.
    const challenge = known.status === 401 && req.headers.authorization !== undefined
      ? { 'www-authenticate': `Basic realm="${deps.issuer}", error="${known.error}", error_description="${known.description.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` }
      : undefined;
    send(res, known.status, { error: known.error, error_description: known.description }, challenge);
  }

  return (req, res) => {
    if (!isForm(req)) {
      deps.fallback(req, res);
      return;
    }
    readBody(req).then((body) => {
      const form = parseForm(body);
      const grantType = form.get('grant_type');
      const grant = grantType?.length === 1 ? grants.get(grantType[0]!) : undefined;
      if (!grant) {
        deps.fallback(replayRequestBody(req, body), res);
        return undefined;
      }
      return serve(req, res, grantType![0]!, grant, form);
    }, (error: unknown) => {
      throw new OAuthRefusal(400, 'invalid_request', error instanceof BodyError ? 'failed to parse the request body' : 'failed to read the request body');
    }).catch((error: unknown) => fail(req, res, error));
  };
}
