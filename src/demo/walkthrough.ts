// `agentgate demo walkthrough`: the whole promise, scripted, against a running demo gateway over
// real HTTP — a person signs in through the picker and the demo IdP (OIDC code flow + PKCE at both
// hops), two agents exchange the person's token for different narrow tokens (RFC 8693), a
// sub-agent re-delegates (nested `act`, RFC 8693 §4.1), an escalation is refused and explained by
// the policy, the person signs out (RP-initiated logout), and introspection (RFC 7662) says every
// agent token is dead. Each step prints what happened and the decoded claims.
import { createHash, randomBytes } from 'node:crypto';

import { decodeJwt } from 'jose';

import type { AgentConfig, Config } from '../config/index.ts';
import type { FederatedIdentity } from '../identity/index.ts';
import { formatDecision } from '../policy/index.ts';
import type { Policy } from '../policy/index.ts';
import { createCookieBrowser } from './cookie-browser.ts';

export interface WalkthroughDeps {
  /** The running gateway's issuer (the config's, or the loopback one the CLI started). */
  issuer: string;
  config: Config;
  policy: Policy;
  /** Reads an enterprise session's identity (the explain step asks the policy about it). */
  identityOf(sid: string): Promise<FederatedIdentity | undefined>;
  stdout(line: string): void;
  /** ANSI colours (only when stdout is a TTY). */
  color: boolean;
  /** Who signs in (a demo person's username); default the first demo person. */
  person?: string;
}

export interface WalkthroughStep {
  title: string;
  ok: boolean;
}

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

class StepFailed extends Error {}

const unescape = (value: string) => value.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');

function clientAuth(agent: AgentConfig | { clientId: string; auth: AgentConfig['auth'] }): { headers: Record<string, string>; form: Record<string, string> } {
  if (agent.auth.method === 'private_key_jwt') throw new StepFailed(`the walkthrough needs secret-authenticated clients; ${agent.clientId} uses private_key_jwt`);
  if (agent.auth.method === 'client_secret_post') return { headers: {}, form: { client_id: agent.clientId, client_secret: agent.auth.secret } };
  const basic = Buffer.from(`${encodeURIComponent(agent.clientId)}:${encodeURIComponent(agent.auth.secret)}`).toString('base64');
  return { headers: { authorization: `Basic ${basic}` }, form: {} };
}

export async function runWalkthrough(deps: WalkthroughDeps): Promise<{ ok: boolean; steps: WalkthroughStep[] }> {
  const { issuer, config, stdout } = deps;
  const paint = (code: string) => (text: string) => (deps.color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const bold = paint('1');
  const green = paint('32');
  const red = paint('31');
  const dim = paint('2');
  const steps: WalkthroughStep[] = [];
  const claimsOf = (token: string, names: readonly string[]) => {
    const claims = decodeJwt(token) as Record<string, unknown>;
    return Object.fromEntries(names.filter((name) => claims[name] !== undefined).map((name) => [name, claims[name]]));
  };
  const show = (label: string, value: unknown) => {
    const text = JSON.stringify(value, null, 2).split('\n');
    stdout(`   ${label}:`);
    for (const line of text) stdout(`     ${dim(line)}`);
  };
  const post = async (path: string, form: Record<string, string>, headers: Record<string, string> = {}) => {
    const res = await fetch(`${issuer}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  async function step(title: string, run: () => Promise<void>): Promise<void> {
    stdout('');
    stdout(bold(`${steps.length + 1}. ${title}`));
    try {
      await run();
      steps.push({ title, ok: true });
      stdout(`   ${green('✓ ok')}`);
    } catch (error) {
      steps.push({ title, ok: false });
      stdout(`   ${red(`✗ ${(error as Error).message}`)}`);
      throw error;
    }
  }
  const expect = (condition: boolean, message: string) => {
    if (!condition) throw new StepFailed(message);
  };

  const app = config.apps[0];
  const demoPeople = config.demoIdp.people;
  const person = demoPeople.find((p) => p.username === (deps.person ?? demoPeople[0]?.username));
  const agent = (id: string) => config.agents.find((a) => a.clientId === id);
  const invoice = agent('invoice-agent');
  const mail = agent('mail-agent');
  const report = agent('report-agent');
  const resourceClient = config.resources.find((r) => r.client)?.client;
  if (!config.demoIdp.enabled || !app || !person || !invoice || !mail || !report || !resourceClient) {
    stdout(red('The walkthrough needs the demo config (config/demo.yaml): demoIdp with people, the agent-console app, invoice-agent, mail-agent, report-agent and a resource client.'));
    return { ok: false, steps };
  }
  const erp = invoice.audiences[0]!;
  const mailbox = mail.audiences[0]!;
  const redirectUri = app.redirectUris[0]!;

  stdout(bold('agentgate demo walkthrough'));
  stdout(dim(`gateway ${issuer} · demo IdP ${issuer}/demo-idp · signing in as ${person.name} <${person.email}> (groups: ${person.groups.join(', ')})`));

  const browser = createCookieBrowser();
  let subjectToken = '';
  let idToken = '';
  let sid = '';
  let invoiceToken = '';
  let mailToken = '';
  let reportToken = '';
  try {
    await step(`${person.name} signs in to the agent console through the picker and the demo IdP`, async () => {
      const verifier = randomBytes(32).toString('base64url');
      const params = new URLSearchParams({
        client_id: app.clientId, response_type: 'code', redirect_uri: redirectUri, scope: 'openid email profile groups',
        code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
        state: randomBytes(8).toString('base64url'), nonce: randomBytes(8).toString('base64url'),
      });
      let hop = await browser.get(`${issuer}/auth?${params}`);
      let url = `${issuer}/auth`;
      const trail: string[] = [];
      let code: string | null = null;
      for (let i = 0; i < 20; i += 1) {
        if (hop.location?.startsWith(redirectUri)) {
          const back = new URL(hop.location);
          code = back.searchParams.get('code');
          expect(Boolean(code), `the gateway answered the app with an error: ${back.searchParams.get('error') ?? ''} ${back.searchParams.get('error_description') ?? ''}`);
          break;
        }
        if (hop.location) {
          url = hop.location;
          hop = await browser.get(url);
          continue;
        }
        expect(hop.status === 200, `the sign-in stopped at ${new URL(url).pathname} with status ${hop.status}`);
        const action = /<form method="post" action="([^"]+)"/.exec(hop.body)?.[1];
        expect(Boolean(action), `no form on ${new URL(url).pathname}`);
        const target = new URL(unescape(action!), url).href;
        if (hop.body.includes('name="idp"')) {
          trail.push(`picker at ${new URL(url).pathname}: "Sign in with ${config.demoIdp.displayName}"`);
          hop = await browser.postForm(target, { idp: config.demoIdp.id });
        } else if (hop.body.includes('name="username"')) {
          trail.push(`${config.demoIdp.displayName} at ${new URL(url).pathname}: chose ${person.username}`);
          hop = await browser.postForm(target, { username: person.username });
        } else {
          throw new StepFailed(`unexpected page at ${new URL(url).pathname}`);
        }
        url = target;
      }
      expect(Boolean(code), 'the sign-in did not come back to the app');
      trail.push(`back at the app with an authorization code (${redirectUri})`);
      for (const line of trail) stdout(`   → ${line}`);
      const tokens = await post('/token', { grant_type: 'authorization_code', code: code!, code_verifier: verifier, redirect_uri: redirectUri, client_id: app.clientId });
      expect(tokens.status === 200, `code redemption failed: ${JSON.stringify(tokens.body)}`);
      subjectToken = String(tokens.body.access_token);
      idToken = String(tokens.body.id_token);
      const info = await post('/token/introspection', { token: subjectToken, client_id: app.clientId });
      sid = String(info.body.sid ?? '');
      expect(info.body.active === true && sid !== '', 'the app\'s token is not active');
      show('ID token', claimsOf(idToken, ['iss', 'sub', 'email', 'name', 'idp', 'roles', 'groups', 'acr', 'amr']));
      stdout(`   enterprise session ${sid}`);
    });

    const exchange = async (who: AgentConfig, subject: string, scope: string, audience: string) => {
      const auth = clientAuth(who);
      return post('/token', { grant_type: EXCHANGE, subject_token: subject, subject_token_type: ACCESS_TOKEN, scope, audience, ...auth.form }, auth.headers);
    };
    const tokenClaims = ['sub', 'client_id', 'aud', 'scope', 'act', 'sid', 'exp'];

    await step(`${invoice.name ?? invoice.clientId} exchanges the person's token for a narrow ERP token`, async () => {
      const res = await exchange(invoice, subjectToken, 'erp:read', erp);
      expect(res.status === 200, `refused: ${JSON.stringify(res.body)}`);
      invoiceToken = String(res.body.access_token);
      expect(decodeJwt(invoiceToken).scope === 'erp:read', 'unexpected scope');
      show(`token (${res.body.expires_in}s)`, claimsOf(invoiceToken, tokenClaims));
    });

    await step(`${mail.name ?? mail.clientId} exchanges the same token for a different narrow mail token${mail.consent === 'required' ? ', once the person consents' : ''}`, async () => {
      let res = await exchange(mail, subjectToken, 'mail:read', mailbox);
      if (res.status === 400 && res.body.error === 'consent_required' && typeof res.body.consent_uri === 'string') {
        stdout(`   → ${res.status} consent_required: ${String(res.body.error_description)}`);
        const consentPage = await browser.get(res.body.consent_uri);
        const csrf = /name="csrf" value="([^"]+)"/.exec(consentPage.body)?.[1];
        const action = /<form method="post" action="([^"]+)"/.exec(consentPage.body)?.[1];
        expect(consentPage.status === 200 && Boolean(csrf) && Boolean(action), `the consent page answered ${consentPage.status}`);
        const heading = /<h1>([^<]+)<\/h1>/.exec(consentPage.body)?.[1] ?? '';
        const words = [...consentPage.body.matchAll(/<li>([^<]+)/g)].map((m) => unescape(m[1]!.trim()));
        stdout(`   → the person opens consent_uri: "${unescape(heading)}" (${words.join(', ')}) and chooses Allow`);
        const query = new URL(res.body.consent_uri).searchParams;
        const approved = await browser.postForm(new URL(unescape(action!), issuer).href, {
          csrf: unescape(csrf!), agent: query.get('agent') ?? '', audience: query.get('audience') ?? '', scope: query.get('scope') ?? '', decision: 'approve',
        });
        expect(approved.status === 200, `approving answered ${approved.status}`);
        res = await exchange(mail, subjectToken, 'mail:read', mailbox);
      }
      expect(res.status === 200, `refused: ${JSON.stringify(res.body)}`);
      mailToken = String(res.body.access_token);
      expect(decodeJwt(mailToken).aud === mailbox, 'unexpected audience');
      show(`token (${res.body.expires_in}s)`, claimsOf(mailToken, tokenClaims));
    });

    await step(`${invoice.name ?? invoice.clientId} delegates to the sub-agent ${report.name ?? report.clientId}`, async () => {
      const res = await exchange(report, invoiceToken, 'erp:read', erp);
      expect(res.status === 200, `refused: ${JSON.stringify(res.body)}`);
      reportToken = String(res.body.access_token);
      const act = decodeJwt(reportToken).act as { sub?: string; act?: { sub?: string } } | undefined;
      expect(act?.sub === report.clientId && act.act?.sub === invoice.clientId, 'the actor chain is not nested');
      show(`token (${res.body.expires_in}s), act = the chain of agents`, claimsOf(reportToken, tokenClaims));
    });

    await step(`${mail.name ?? mail.clientId} tries to escalate to mail:send and is refused, with the policy's explanation`, async () => {
      const res = await exchange(mail, subjectToken, 'mail:send', mailbox);
      expect(res.status === 400 && res.body.error === 'invalid_scope', `expected invalid_scope, got ${res.status} ${JSON.stringify(res.body)}`);
      show(`${res.status} from the token endpoint`, res.body);
      const identity = await deps.identityOf(sid);
      expect(Boolean(identity), 'the enterprise session is gone');
      const decision = deps.policy.decide({ identity: identity!, agent: mail.clientId, scopes: ['mail:send'], audience: mailbox, now: Math.floor(Date.now() / 1000), explainAll: false });
      expect(decision.outcome !== 'grant', 'the policy would grant it');
      stdout('   policy explain:');
      for (const line of formatDecision(decision).split('\n')) stdout(`     ${dim(line)}`);
    });

    await step(`${person.name} signs out of the gateway (RP-initiated logout)`, async () => {
      // The browser that signed in: its session cookie names the session the form ends.
      const params = new URLSearchParams({ id_token_hint: idToken, ...(app.postLogoutRedirectUris[0] ? { post_logout_redirect_uri: app.postLogoutRedirectUris[0] } : { client_id: app.clientId }) });
      const confirm = await browser.get(`${issuer}/session/end?${params}`);
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)?.[1];
      expect(confirm.status === 200 && Boolean(xsrf), `no logout confirmation (status ${confirm.status})`);
      const done = await browser.postForm(`${issuer}/session/end/confirm`, { xsrf: xsrf!, logout: 'yes' });
      expect(done.status === 303, `logout confirmation answered ${done.status}`);
      stdout(`   session ${sid} ended`);
    });

    await step('Every agent token from that session is now rejected (RFC 7662 introspection)', async () => {
      const auth = clientAuth(resourceClient);
      for (const [label, token] of [[invoice.clientId, invoiceToken], [mail.clientId, mailToken], [report.clientId, reportToken]] as const) {
        const res = await post('/token/introspection', { token, ...auth.form }, auth.headers);
        expect(res.status === 200 && res.body.active === false, `${label}'s token is still active`);
        stdout(`   ${label}: ${JSON.stringify(res.body)}`);
      }
    });
  } catch (error) {
    if (!(error instanceof StepFailed) && !(error instanceof Error)) throw error;
    stdout('');
    stdout(red(`walkthrough failed at step ${steps.length}`));
    return { ok: false, steps };
  }
  stdout('');
  stdout(green(bold(`walkthrough complete: ${steps.length} steps passed`)));
  return { ok: true, steps };
}
