// OAuth-shaped errors raised inside oidc-provider's pipeline. oidc-provider renders any
// `expose`d OIDCProviderError as `{ error, error_description }` with its status; a 5xx is not
// exposed by default, so the store outage error opts in: clients must learn to retry (503
// temporarily_unavailable, RFC 6749 §4.1.2.1), not see a generic server_error.
import { errors } from 'oidc-provider';

export class TemporarilyUnavailable extends errors.OIDCProviderError {
  constructor(description = 'the gateway cannot reach its session store; retry shortly') {
    super(503, 'temporarily_unavailable');
    this.expose = true;
    this.error_description = description;
  }
}

export const {
  InvalidGrant, InvalidScope, InvalidTarget, InvalidRequest, InvalidClientAuth, InvalidDpopProof, UnauthorizedClient, CustomOIDCProviderError,
} = errors;
