// The demo's own two pages (development mode with the demo IdP only): a home page at
// `{issuer}/demo` with the way in, and the stand-in agent console's redirect target
// `{issuer}/demo/callback`, where a real app would redeem the code. No script, no state.
import express from 'express';
import type { Router } from 'express';

import type { Config } from '../config/index.ts';
import { escapeHtml, page } from '../pages/index.ts';

/** A fixed PKCE pair is fine for a link a person clicks in the demo: the code is never redeemed here. */
const DEMO_CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

export function demoSignInUrl(config: Config): string | undefined {
  const app = config.apps.find((candidate) => candidate.redirectUris.some((uri) => uri.startsWith(`${config.issuer}/demo/`))) ?? config.apps[0];
  const redirectUri = app?.redirectUris[0];
  if (!app || !redirectUri) return undefined;
  const params = new URLSearchParams({
    client_id: app.clientId, response_type: 'code', scope: 'openid email profile groups', redirect_uri: redirectUri,
    code_challenge: DEMO_CHALLENGE, code_challenge_method: 'S256',
  });
  return `${config.issuer}/auth?${params}`;
}

export function createDemoPages(config: Config): Router {
  const router = express.Router();
  const base = new URL(config.issuer).pathname.replace(/\/$/, '');
  const links = `<ul>
<li><a href="${escapeHtml(`${base}/account/agents`)}">My agents</a> — the agents acting for you, with revoke buttons</li>
<li><a href="${escapeHtml(`${base}/admin`)}">Admin console</a> — for ${escapeHtml(config.admin.roles.length > 0 ? `people with the ${config.admin.roles.join(', ')} role` : 'admins (none configured)')}</li>
</ul>
<p>The whole story, scripted: <code>npx agentgate demo walkthrough</code></p>`;
  router.get('/', (_req, res) => {
    const signIn = demoSignInUrl(config);
    const people = config.demoIdp.people.map((p) => `<li>${escapeHtml(p.name)} <span class="note">(${escapeHtml(p.email)}; groups: ${escapeHtml(p.groups.join(', ') || 'none')})</span></li>`).join('\n');
    res.type('html').set('Cache-Control', 'no-store').send(page('Demo', `<h1>agentgate demo</h1>
<p>Sign in through the gateway's picker and the built-in ${escapeHtml(config.demoIdp.displayName)}, as one of:</p>
<ul>
${people}
</ul>
${signIn ? `<p><a href="${escapeHtml(signIn)}">Sign in to the agent console</a></p>` : ''}
${links}`));
  });
  router.get('/callback', (req, res) => {
    const failed = typeof req.query.error === 'string';
    res.status(failed ? 400 : 200).type('html').set('Cache-Control', 'no-store').send(page(failed ? 'Not signed in' : 'Signed in', failed
      ? `<h1>Not signed in</h1><p role="alert">${escapeHtml(req.query.error)}: ${escapeHtml(req.query.error_description)}</p><p><a href="${escapeHtml(`${base}/demo`)}">Start again</a></p>`
      : `<h1>You are signed in</h1>
<p>The agent console (a stand-in here) received an authorization code; a real app would redeem it for your token, which its agents exchange for their own narrow tokens.</p>
${links}`));
  });
  return router;
}
