// The signed-in person's own pages: consent and "My agents", and signing a browser into them
// (and into the admin console) through the gateway's own client.
export { createAccountRouter, createCsrf, describeScope } from './routes.ts';
export type { AccountDeps } from './routes.ts';
export { createPageSignIn, safeReturnPath, SIGN_IN_COOKIE, SIGN_IN_TTL } from './sign-in.ts';
export type { PageSignIn, PageSignInDeps } from './sign-in.ts';
