// Sign-in failures, with stable codes (logs, audit, tests) and a message an IT admin can act on.
// The message is safe to show to the person on the error page; `detail` is for logs only.

export type FederationErrorCode =
  | 'ERR_FEDERATION_UNKNOWN_IDP'
  | 'ERR_FEDERATION_STATE'
  | 'ERR_FEDERATION_IDP_ERROR'
  | 'ERR_FEDERATION_IDP_UNREACHABLE'
  | 'ERR_FEDERATION_ID_TOKEN_INVALID'
  | 'ERR_FEDERATION_TENANT_NOT_ALLOWED'
  | 'ERR_FEDERATION_DOMAIN_NOT_ALLOWED'
  | 'ERR_FEDERATION_CLAIMS_MISSING'
  | 'ERR_LOGOUT_TOKEN_INVALID';

export class FederationError extends Error {
  readonly code: FederationErrorCode;
  readonly detail: string | undefined;

  constructor(code: FederationErrorCode, message: string, detail?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FederationError';
    this.code = code;
    this.detail = detail;
  }
}
