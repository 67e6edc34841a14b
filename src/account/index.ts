// The signed-in person's own pages: consent and "My agents".
export { createAccountRouter, createCsrf, describeScope } from './routes.ts';
export type { AccountDeps } from './routes.ts';
