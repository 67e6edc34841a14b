// The few HTTP calls the SDK makes to the gateway (discovery, token, introspection, revocation
// catch-up), over an injectable fetch with a timeout. Bodies are parsed defensively: whatever the
// network sends is data, never trusted to have a shape.

export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

export const DEFAULT_TIMEOUT_MS = 5000;

export interface JsonResponse {
  status: number;
  headers: Headers;
  /** The parsed JSON object; `{}` when the body was empty, not JSON, or not an object. */
  body: Record<string, unknown>;
}

export async function requestJson(fetchImpl: FetchLike, url: string | URL, init: RequestInit & { timeoutMs?: number } = {}): Promise<JsonResponse> {
  const { timeoutMs = DEFAULT_TIMEOUT_MS, ...rest } = init;
  const res = await fetchImpl(url, { ...rest, signal: rest.signal ?? AbortSignal.timeout(timeoutMs), redirect: 'manual' });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = text ? JSON.parse(text) : {};
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    // not JSON: callers see an empty object and judge by the status
  }
  return { status: res.status, headers: res.headers, body };
}

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding. */
export function basicAuthorization(clientId: string, clientSecret: string): string {
  const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}`;
}

export const epochSeconds = (): number => Math.floor(Date.now() / 1000);
