// Minimal server-rendered pages of the authorization server (error page; the development login
// form). Everything interpolated is HTML-escaped; no inline script, so a strict CSP holds.
import { createHash } from 'node:crypto';

export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/**
 * The one stylesheet of every page, inline but allowed by its hash (pageCsp), so the CSP needs
 * neither 'unsafe-inline' nor a second request. Pages carry no script at all.
 */
export const PAGE_STYLE = 'body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1b1f24}'
  + 'label{display:block;margin:.75rem 0 .25rem}input,select{width:100%;padding:.5rem;font:inherit;box-sizing:border-box}'
  + 'button{margin:1rem .5rem 0 0;padding:.5rem 1rem;font:inherit}.note{color:#57606a;font-size:.9rem}'
  + 'table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #d0d7de;vertical-align:top}'
  + 'ul.scopes li{margin:.25rem 0}code{font-size:.9em}.inline{display:inline}.danger{color:#a40e26}';

export const PAGE_STYLE_HASH = `sha256-${createHash('sha256').update(PAGE_STYLE).digest('base64')}`;

export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · agentgate</title>
<style>${PAGE_STYLE}</style>
</head><body><main>${body}</main></body></html>`;
}

/** A page-shaped refusal (403 CSRF, 401 not signed in, 400 bad link …) with a correlation id. */
export function renderProblemPage(input: { title: string; message: string; correlationId: string; link?: { href: string; text: string } }): string {
  return page(input.title, `<h1>${escapeHtml(input.title)}</h1>
<p role="alert">${escapeHtml(input.message)}</p>
<p class="note">If you need help, give your IT team this reference: <code>${escapeHtml(input.correlationId)}</code></p>
${input.link ? `<p><a href="${escapeHtml(input.link.href)}">${escapeHtml(input.link.text)}</a></p>` : ''}`);
}

export function renderErrorPage(out: { error?: string; error_description?: string }, correlationId?: string): string {
  return page('Sign-in error', `<h1>Something went wrong</h1>
<p><strong>${escapeHtml(out.error)}</strong></p>
<p>${escapeHtml(out.error_description)}</p>
${correlationId ? `<p class="note">If you need help, give your IT team this reference: <code>${escapeHtml(correlationId)}</code></p>` : ''}`);
}

/** RP-initiated logout confirmation; `form` is oidc-provider's own form (carries its xsrf). */
export function renderLogoutPage(form: string): string {
  return page('Sign out', `<h1>Sign out of the gateway?</h1>
<p>Signing out ends your session here; agents acting for you lose their tokens from it.</p>
${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`);
}

export function renderSignedOutPage(): string {
  return page('Signed out', '<h1>You are signed out</h1><p>You can close this window.</p>');
}

/** A sign-in failure: what happened in words, and a correlation id to quote to IT. */
export function renderSignInFailedPage(input: { message: string; correlationId: string; retryUrl?: string }): string {
  return page('Sign-in failed', `<h1>Sign-in failed</h1>
<p role="alert">${escapeHtml(input.message)}</p>
<p class="note">If this keeps happening, give your IT team this reference: <code>${escapeHtml(input.correlationId)}</code></p>
${input.retryUrl ? `<p><a href="${escapeHtml(input.retryUrl)}">Try again</a></p>` : ''}`);
}

export interface PickerOption {
  id: string;
  displayName: string;
}

/** The sign-in page: email for home-realm discovery, or pick the identity provider. */
export function renderPickerPage(input: { action: string; options: readonly PickerOption[]; email?: string; notice?: string; devLoginAction?: string }): string {
  const buttons = input.options.map((o) =>
    `<button type="submit" name="idp" value="${escapeHtml(o.id)}">Sign in with ${escapeHtml(o.displayName)}</button>`).join('\n');
  return page('Sign in', `<h1>Sign in</h1>
${input.notice ? `<p role="status">${escapeHtml(input.notice)}</p>` : ''}
<form method="post" action="${escapeHtml(input.action)}">
<label for="email">Work email</label>
<input id="email" name="email" type="email" autocomplete="username" value="${escapeHtml(input.email ?? '')}">
<button type="submit" name="continue" value="email">Continue</button>
${input.options.length > 0 ? `<p class="note">or choose your organization's sign-in:</p>\n${buttons}` : ''}
</form>
${input.devLoginAction ? `<p class="note"><a href="${escapeHtml(input.devLoginAction)}">Development test login</a></p>` : ''}`);
}
