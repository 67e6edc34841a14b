// The loopback internet and the peer browser: routing, refusal of the real network, forwarded
// headers, redirects, and the cookie jar the federation tests sign in with.
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createPeerBrowser, parseForms } from '../support/peers/browser.ts';
import { readBody } from '../support/peers/host.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';
import { startOktaPeer } from '../support/peers/okta.ts';
import type { OktaPeer } from '../support/peers/okta.ts';
import { discover } from '../support/peers/relying-party.ts';

interface Seen { method: string; url: string; headers: IncomingMessage['headers']; body: string }

let server: Server;
let target: string;
const seen: Seen[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    readBody(req).then((body) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: body.toString() });
      const url = req.url ?? '/';
      if (url === '/hop') res.writeHead(302, { location: 'https://other.example/landed?x=1' }).end();
      else if (url === '/post-redirect') res.writeHead(303, { location: '/landed' }).end();
      else if (url === '/away') res.writeHead(302, { location: 'https://unmapped.example/' }).end();
      else if (url.startsWith('/cookies')) {
        res.writeHead(200, {
          'content-type': 'text/plain',
          'set-cookie': [
            'a=1; Path=/; Secure; HttpOnly; SameSite=None',
            'b=2; Path=/cookies/deep',
            'c=3; Domain=example.com; Path=/',
            'gone=x; Path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT',
          ],
        }).end('ok');
      } else res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    }, () => res.writeHead(400).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  target = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  const closed = new Promise((resolve) => server.close(resolve));
  server.closeAllConnections();
  await closed;
});

describe('loopback internet', () => {
  it('refuses unmapped non-loopback origins without touching the network', async () => {
    const internet = createLoopbackInternet();
    await expect(internet.fetch('https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration'))
      .rejects.toThrow(new TypeError('network access refused: https://login.microsoftonline.com'));
    await expect(internet.fetch('http://93.184.216.34/')).rejects.toThrow('network access refused: http://93.184.216.34');
    expect(() => internet.route('https://acme.okta.com', 'https://real.example.com')).toThrow(TypeError);
  });

  it('rewrites routed origins keeping method, path, query, headers and body, and says where the request was addressed', async () => {
    const internet = createLoopbackInternet();
    internet.route('https://acme.okta.com', target);
    const response = await internet.fetch(new Request('https://acme.okta.com/oauth2/v1/token?a=b', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic eDp5' },
      body: new URLSearchParams({ grant_type: 'authorization_code' }),
    }));
    expect(response.status).toBe(200);
    expect(response.url).toBe('https://acme.okta.com/oauth2/v1/token?a=b');
    const request = seen.at(-1)!;
    expect(request).toMatchObject({ method: 'POST', url: '/oauth2/v1/token?a=b', body: 'grant_type=authorization_code' });
    expect(request.headers).toMatchObject({ authorization: 'Basic eDp5', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'acme.okta.com' });
    expect(internet.rewrite('https://acme.okta.com/x?y#z')).toBe(`${target}/x?y#z`);
    expect(internet.unrewrite(`${target}/x?y`)).toBe('https://acme.okta.com/x?y');
    expect(internet.unrewrite('http://127.0.0.1:1/x')).toBe('http://127.0.0.1:1/x');

    // Loopback passes through untouched.
    await internet.fetch(`${target}/direct`);
    expect(seen.at(-1)!.headers['x-forwarded-host']).toBeUndefined();
  });

  it('follows redirects through the routes (303 → GET), refuses redirects off the loopback internet', async () => {
    const internet = createLoopbackInternet();
    internet.route('https://acme.okta.com', target);
    internet.route('https://other.example', target);
    const followed = await internet.fetch('https://acme.okta.com/hop');
    expect(followed.url).toBe('https://other.example/landed?x=1');
    expect(seen.at(-1)!.headers['x-forwarded-host']).toBe('other.example');

    const posted = await internet.fetch('https://acme.okta.com/post-redirect', { method: 'POST', body: 'a=1', headers: { 'content-type': 'text/plain' } });
    expect(posted.status).toBe(200);
    expect(seen.at(-1)).toMatchObject({ method: 'GET', url: '/landed', body: '' });

    const manual = await internet.fetch('https://acme.okta.com/hop', { redirect: 'manual' });
    expect(manual.status).toBe(302);
    await expect(internet.fetch('https://acme.okta.com/away')).rejects.toThrow('network access refused: https://unmapped.example');
    await expect(internet.fetch('https://acme.okta.com/hop', { redirect: 'error' })).rejects.toThrow(TypeError);
  });
});

describe('peer hosts', () => {
  it('serve an origin once per internet; close() frees it, stop() keeps it (connection refused)', async () => {
    const internet = createLoopbackInternet();
    const options = { internet, clients: [], users: [] };
    const first = await startOktaPeer(options);
    await expect(startOktaPeer(options)).rejects.toThrow('https://acme.okta.com is already served');
    await first.stop();
    await expect(internet.fetch('https://acme.okta.com/oauth2/default/.well-known/openid-configuration')).rejects.toThrow(TypeError);
    await first.close();
    await expect(internet.fetch('https://acme.okta.com/')).rejects.toThrow('network access refused');
    const second = await startOktaPeer(options);
    expect((await internet.fetch('https://acme.okta.com/oauth2/default/.well-known/openid-configuration')).status).toBe(200);
    await second.close();
  });
});

describe('peer browser', () => {
  it('keeps cookies per public host and path, ignoring Secure, honouring Domain and deletion', async () => {
    const internet = createLoopbackInternet();
    internet.route('https://login.example.com', target);
    internet.route('https://other.example.org', target);
    const browser = createPeerBrowser(internet);
    await browser.get('https://login.example.com/cookies/deep/page');
    expect(browser.cookies('https://login.example.com/cookies/deep/x').map((c) => c.name)).toEqual(['b', 'a', 'c']);
    expect(browser.cookies('https://login.example.com/elsewhere').map((c) => c.name)).toEqual(['a', 'c']);
    expect(browser.cookies('https://sub.example.com/').map((c) => c.name)).toEqual(['c']);
    expect(browser.cookies('https://other.example.org/cookies/deep/x')).toEqual([]);
    await browser.get('https://login.example.com/cookies/deep/again');
    expect(seen.at(-1)!.headers.cookie).toBe('b=2; a=1; c=3');
    browser.clearCookies('login.example.com');
    expect(browser.cookies('https://login.example.com/')).toEqual([]);
  });

  it('parses forms with entity-encoded actions and hidden fields', () => {
    const [form] = parseForms(`<form method="post" action="/a?x=1&amp;y=2"><input type="hidden" name="xsrf" value="t&#39;k"/>
      <input name="username" value="ana"><input name="password" type="password"><button type="submit">Go</button></form>`, 'https://idp.example/start');
    expect(form).toEqual({
      action: 'https://idp.example/a?x=1&y=2', method: 'POST', fields: { xsrf: "t'k", username: 'ana', password: '' }, inputs: ['username', 'password'],
    });
  });

  it('stops at an auto-post form whose action matches (response_mode=form_post) and returns its fields', async () => {
    const internet = createLoopbackInternet();
    const redirectUri = `${target}/callback`;
    let okta: OktaPeer | undefined;
    try {
      okta = await startOktaPeer({
        internet,
        clients: [{ client_id: 'app', client_secret: 'secret-0123456789', redirect_uris: [redirectUri] }],
        users: [{ username: 'ana', password: 'pw', email: 'ana@acme.com', name: 'Ana' }],
      });
      const config = await discover(internet, okta.issuer, 'app', 'secret-0123456789');
      const verifier = client.randomPKCECodeVerifier();
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri, scope: 'openid', response_mode: 'form_post', state: 'st',
        code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      });
      const walk = await createPeerBrowser(internet).followUntil(url.href, (location) => location.startsWith(redirectUri), { username: 'ana', password: 'pw' });
      expect(walk.location).toBe(redirectUri);
      expect(walk.form).toMatchObject({ state: 'st', iss: okta.issuer });
      expect(walk.form?.code).toMatch(/.{20,}/);
    } finally {
      await okta?.close();
    }
  });
});
