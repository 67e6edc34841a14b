// Minimal server-rendered pages of the authorization server (error page; the development login
// form). Everything interpolated is HTML-escaped; no inline script, so a strict CSP holds.

export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · agentgate</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1b1f24}
label{display:block;margin:.75rem 0 .25rem}input{width:100%;padding:.5rem;font:inherit}
button{margin-top:1rem;padding:.5rem 1rem;font:inherit}.note{color:#57606a;font-size:.9rem}</style>
</head><body><main>${body}</main></body></html>`;
}

export function renderErrorPage(out: { error?: string; error_description?: string }): string {
  return page('Sign-in error', `<h1>Something went wrong</h1>
<p><strong>${escapeHtml(out.error)}</strong></p>
<p>${escapeHtml(out.error_description)}</p>`);
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
