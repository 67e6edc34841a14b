// Demo mode: the built-in demo identity provider and the scripted walkthrough of the whole story.
export { createDemoIdp, demoIdpConnectorConfig } from './idp.ts';
export type { DemoIdp } from './idp.ts';
export { createDemoPages, demoSignInUrl } from './pages.ts';
export { runWalkthrough } from './walkthrough.ts';
export type { WalkthroughDeps } from './walkthrough.ts';
