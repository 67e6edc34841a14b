// Errors of the agentgate client SDK. What an agent sees when the gateway refuses an exchange is
// the gateway's OAuth error, carried unchanged (RFC 6749 §5.2, RFC 8693 §2.2.2); the step-up
// refusal of RFC 9470 §3 is its own type because the agent must act on it (send the person back
// to sign in with `acr_values` / `max_age`). Stable `code`s follow jose's `ERR_*` habit.

/** A token endpoint refusal (or no answer at all) during a token exchange. */
export class TokenExchangeError extends Error {
  readonly code: string = 'ERR_TOKEN_EXCHANGE_FAILED';
  /** The OAuth `error` code (RFC 6749 §5.2), or `temporarily_unavailable` when the gateway did not answer. */
  readonly error: string;
  readonly error_description: string | undefined;
  /** HTTP status of the gateway's answer; 0 when there was none (network failure, timeout). */
  readonly status: number;

  constructor(error: string, description: string | undefined, status: number, options?: { cause?: unknown }) {
    super(description ? `${error}: ${description}` : error, options);
    this.name = 'TokenExchangeError';
    this.error = error;
    this.error_description = description;
    this.status = status;
  }
}

/**
 * RFC 9470 §3: the person's sign-in is too weak or too old for what the agent asked. The app
 * that hosts the agent sends the person to the authorization endpoint again with these
 * `acr_values` and `max_age` (and `prompt=login`), then exchanges the fresh token.
 */
export class InsufficientUserAuthenticationError extends TokenExchangeError {
  override readonly code = 'ERR_INSUFFICIENT_USER_AUTHENTICATION';
  /** Space-separated ACR values to request, exactly as the gateway sent them (`acr_values`). */
  readonly acrValues: string | undefined;
  /** Maximum sign-in age in seconds to request (`max_age`). */
  readonly maxAge: number | undefined;

  constructor(description: string | undefined, status: number, step: { acrValues?: string; maxAge?: number }) {
    super('insufficient_user_authentication', description, status);
    this.name = 'InsufficientUserAuthenticationError';
    this.acrValues = step.acrValues;
    this.maxAge = step.maxAge;
  }
}

/**
 * Why a protected resource refuses a request; the middleware renders it as the status, the
 * `WWW-Authenticate` challenge and an OAuth-shaped body (RFC 6750 §3, RFC 9449 §7.1).
 */
export class ProtectedResourceError extends Error {
  readonly status: 401 | 403 | 503;
  /** RFC 6750 §3.1 / RFC 9449 §12.2 error code; undefined for a request without any token (§3.1). */
  readonly error: string | undefined;
  /** The challenge's scheme: DPoP for proof and key-binding failures (RFC 9449 §7.1). */
  readonly scheme: 'Bearer' | 'DPoP';

  constructor(status: 401 | 403 | 503, error: string | undefined, description: string, scheme: 'Bearer' | 'DPoP' = 'Bearer') {
    super(description);
    this.name = 'ProtectedResourceError';
    this.status = status;
    this.error = error;
    this.scheme = scheme;
  }
}
