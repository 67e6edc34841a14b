// The one seam that depends on how oidc-provider works inside (STYLE.md; ESLint keeps imports of
// its internal modules to this file). Pinned by the oidc-provider version in package-lock.json
// (9.13); any upgrade must revisit this file and its tests (test/authz/token-endpoint.test.ts).
import type { IncomingMessage } from 'node:http';

/**
 * Makes a request whose body the token endpoint's front (token-endpoint.ts) has read readable
 * again for oidc-provider: the same bytes, once. oidc-provider 9.13 reads form bodies through
 * `req.readable`, `req.readableEncoding` and `req.iterator()` (lib/shared/selective_body.js); its
 * fallback for a consumed body (`req.body`) prints a warning meant for apps that parse bodies
 * upstream, so the body is replayed through the same interface instead. The request object itself
 * is kept (own properties shadow the stream's): a wrapper with the request as its prototype would
 * turn every request into a V8 prototype object and slow all code touching requests.
 */
export function replayRequestBody(req: IncomingMessage, body: Buffer): IncomingMessage {
  return Object.defineProperties(req, {
    readable: { value: true, configurable: true },
    readableEncoding: { value: null, configurable: true },
    iterator: {
      configurable: true,
      value: async function* replay() {
        yield body;
      },
    },
  });
}
