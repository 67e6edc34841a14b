// The IdP ends the session (OIDC Back-Channel Logout 1.0): a person signed in through Okta at
// replica A, an agent exchanged their token at replica B; Okta's logout token reaches A and
// introspection on B answers inactive within a second; B's feed carries the session event
// (reason upstream_logout) — one per session the logout ended.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { completed, federatedSignIn, redeem } from '../support/federation.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';
import { startOktaPeer } from '../support/peers/okta.ts';
import type { OktaPeer } from '../support/peers/okta.ts';
import { ERP, exchange, feedToken, inactiveAfter, introspect, openFeed, revocationConfig, startReplicas } from './fixture.ts';
import type { FeedConnection, Replicas } from './fixture.ts';

const internet = createLoopbackInternet();
const CLIENT = { client_id: '0oa-gateway', client_secret: 'okta-client-secret-0123456789' };
const alice = { username: 'alice@acme.com', password: 'alice-password', sub: '00u1alice0000000001', email: 'alice@acme.com', name: 'Alice Example', groups: ['Finance'] };
let replicas: Replicas;
let okta: OktaPeer;
let feed: FeedConnection;

beforeAll(async () => {
  replicas = await startReplicas({
    fetch: internet.fetch,
    config: revocationConfig({
      devLogin: { enabled: false },
      identityProviders: [{
        id: 'okta', type: 'oidc', preset: 'okta', issuer: 'https://acme.okta.com/oauth2/default',
        clientId: CLIENT.client_id, clientSecret: CLIENT.client_secret,
      }],
    }),
  });
  const { a } = replicas;
  okta = await startOktaPeer({
    internet,
    clients: [{
      ...CLIENT,
      redirect_uris: [`${a.url}/federation/oidc/okta/callback`],
      backchannel_logout_uri: `${a.url}/federation/oidc/okta/backchannel-logout`,
    }],
    users: [alice],
  });
  feed = await openFeed(replicas.b, await feedToken(replicas.b));
});
afterAll(async () => {
  feed?.close();
  await replicas?.close();
  await okta?.close();
});

describe('upstream back-channel logout across replicas', () => {
  it('kills the agent tokens exchanged at B within 1 s of the IdP\'s logout at A', async () => {
    const { a, b } = replicas;
    const laptop = await federatedSignIn(a, internet, { ...alice, idpHint: 'okta' });
    const tokens = await redeem(a, laptop);
    expect(tokens.status).toBe(200);
    const accessToken = String(tokens.body.access_token);
    const sid = String((await introspect(a, accessToken)).sid);
    // A second sign-in (another device): the IdP's logout by sub ends both.
    const phone = (await completed(a, await federatedSignIn(a, internet, { ...alice, idpHint: 'okta' }))).session;
    expect(phone.sid).not.toBe(sid);
    const agentToken = await exchange(b, 'agent-a', accessToken, 'erp:read', ERP);
    expect(await introspect(b, agentToken)).toMatchObject({ active: true, sid, sub: `okta|${alice.sub}` });

    const delivery = await okta.backchannelLogout({ sub: alice.sub });
    const loggedOut = Date.now();
    expect(delivery.status).toBe(200);
    expect(await inactiveAfter(b, agentToken, loggedOut)).toBeLessThanOrEqual(1000);

    // Both of Alice's sessions ended: one event each.
    for (const ended of [sid, phone.sid]) {
      await expect.poll(() => feed.events.find((e) => e.type === 'session' && e.sid === ended)).toMatchObject({
        sub: `okta|${alice.sub}`, reason: 'upstream_logout',
      });
    }
  });
});
