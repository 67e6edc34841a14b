// The fallback when the revocation feed has been down too long: ask the gateway about each token
// (RFC 7662 §2) at the discovery's `introspection_endpoint`, authenticated as the resource
// server's client. Fail closed: no answer, or anything but a 200 with a boolean `active`, is
// "cannot tell", which the middleware turns into 503 temporarily_unavailable.
import type { ClientAuthentication } from './client-auth.ts';
import type { Discovery } from './discovery.ts';
import { requestJson } from './http.ts';
import type { FetchLike } from './http.ts';

export class IntrospectionUnavailableError extends Error {
  readonly code = 'ERR_INTROSPECTION_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IntrospectionUnavailableError';
  }
}

export interface Introspector {
  /** Whether the gateway says the token is active; throws IntrospectionUnavailableError when it cannot be asked. */
  active(token: string): Promise<boolean>;
}

export function createIntrospector(options: { discovery: Discovery; auth: ClientAuthentication; fetch: FetchLike; timeoutMs: number }): Introspector {
  return {
    async active(token) {
      let res;
      try {
        const metadata = await options.discovery.get();
        if (typeof metadata.introspection_endpoint !== 'string') throw new Error('the issuer advertises no introspection_endpoint');
        const form = new URLSearchParams({ token, token_type_hint: 'access_token' });
        const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
        await options.auth.apply(form, headers);
        res = await requestJson(options.fetch, metadata.introspection_endpoint, { method: 'POST', headers, body: form, timeoutMs: options.timeoutMs });
      } catch (error) {
        throw new IntrospectionUnavailableError('the introspection endpoint could not be reached', { cause: error });
      }
      if (res.status !== 200 || typeof res.body.active !== 'boolean') {
        throw new IntrospectionUnavailableError(`the introspection endpoint answered HTTP ${res.status}`);
      }
      return res.body.active;
    },
  };
}
