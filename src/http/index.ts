export { OAuthError, errorHandler, notFound, toOAuthBody } from './errors.ts';
export { createRouteLabeler } from './route-label.ts';
export { pageCsp, pageCspFor, securityHeaders } from './security-headers.ts';
export { createBasicAuthNormalizer, sameSecret } from './basic-auth.ts';
