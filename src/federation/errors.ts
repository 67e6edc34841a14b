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
  | 'ERR_LOGOUT_TOKEN_INVALID'
  // SAML 2.0 (src/federation/saml): each refusal has its own code so audits say what was tried.
  | 'ERR_SAML_METADATA'
  | 'ERR_SAML_MALFORMED'
  | 'ERR_SAML_TOO_LARGE'
  | 'ERR_SAML_DOCTYPE'
  | 'ERR_SAML_WEAK_ALGORITHM'
  | 'ERR_SAML_SIGNATURE_INVALID'
  | 'ERR_SAML_DESTINATION'
  | 'ERR_SAML_RECIPIENT'
  | 'ERR_SAML_AUDIENCE'
  | 'ERR_SAML_ISSUER'
  | 'ERR_SAML_TIME'
  | 'ERR_SAML_IN_RESPONSE_TO'
  | 'ERR_SAML_UNSOLICITED'
  | 'ERR_SAML_REPLAY'
  | 'ERR_SAML_SUBJECT'
  | 'ERR_SAML_LOGOUT_INVALID';

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
