// Errors of the keys context. Codes are stable (`ERR_KEYS_*`) so the CLI and the composition root
// can map them without parsing messages. Messages name files and JSON paths, never key material:
// a key file is a secret, and errors end up in logs and terminals.

export type KeyFileErrorCode = 'ERR_KEYS_INVALID' | 'ERR_KEYS_NOT_FOUND' | 'ERR_KEYS_EXISTS';

export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
  readonly code: KeyFileErrorCode;
  /** Every problem found, one per entry (`keys[1].kid: missing`); empty when not a validation error. */
  readonly problems: readonly string[];

  constructor(code: KeyFileErrorCode, message: string, problems: readonly string[] = []) {
    super(message);
    this.code = code;
    this.problems = problems;
  }
}
