// Server-rendered pages (no build step, no inline script, CSP-friendly): layout and escaping,
// shared by the authorization server's and federation's pages.
export { escapeHtml, page, PAGE_STYLE, PAGE_STYLE_HASH, renderErrorPage, renderProblemPage, renderLogoutPage, renderPickerPage, renderSignInFailedPage, renderSignedOutPage } from './layout.ts';
export type { PickerOption } from './layout.ts';
