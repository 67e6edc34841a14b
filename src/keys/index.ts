// Signing keys of the gateway: a private JWK Set (RFC 7517) on disk, newest key first, keys named
// by their RFC 7638 thumbprint. The newest key signs; every key verifies until it is retired.
// This folder generates, validates, reads, writes (atomically, 0600) and rotates that file, and
// turns it into the key ring the authorization server uses. It depends on nothing else in src/.

export { KeyFileError } from './errors.ts';
export type { KeyFileErrorCode } from './errors.ts';
export { generateSigningKey, isKeyAlg, publicJwk, publicJwks, SUPPORTED_KEY_ALGS } from './jwk.ts';
export type {
  GenerateSigningKeyOptions,
  KeyAlg,
  PrivateJwk,
  PrivateJwks,
  PublicJwk,
  PublicJwks,
} from './jwk.ts';
export { parsePrivateJwks } from './validate.ts';
export { readKeyFile, rotateKeyFile, writeKeyFile } from './key-file.ts';
export type { RotateKeyFileOptions, RotateKeyFileResult, WriteKeyFileOptions } from './key-file.ts';
export { createKeyRing } from './key-ring.ts';
export type { KeyRing } from './key-ring.ts';
export { keysGenerate, keysRotate } from './cli.ts';
export type { CliIo, KeysCliDeps, KeysGenerateArgs, KeysRotateArgs } from './cli.ts';
export { createJwsSigner, createJwsVerifier } from './jws.ts';
export type { JwsSigner, JwsVerifier, VerifiedJws } from './jws.ts';
export { DPOP_ALGORITHMS, DpopProofError, jwkThumbprint, verifyDpopProof } from './dpop.ts';
export type { DpopProof, VerifyDpopProofOptions } from './dpop.ts';
