// DPoP proof verification (RFC 9449 §4.3): proofs made by jose verify (differential, each alg),
// thumbprints match jose's RFC 7638 ones, and every check refuses what it must.
import { createHash } from 'node:crypto';

import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { describe, expect, it } from 'vitest';

import { DpopProofError, verifyDpopProof } from './dpop.ts';

const URL_ = 'https://gw.example/oidc/token';
const NOW = 1_800_000_000;

async function keyPair(alg: string) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, privateKey, jwk: await exportJWK(publicKey), privateJwk: await exportJWK(privateKey) };
}

async function proof(
  key: { alg: string; privateKey: CryptoKey; jwk: JWK },
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
) {
  return new SignJWT({ htm: 'POST', htu: URL_, jti: 'j-1', iat: NOW, ...claims })
    .setProtectedHeader({ alg: key.alg, typ: 'dpop+jwt', jwk: key.jwk, ...header })
    .sign(key.privateKey);
}

const verify = (value: string, extra: Partial<Parameters<typeof verifyDpopProof>[1]> = {}) =>
  verifyDpopProof(value, { method: 'POST', url: URL_, now: NOW, ...extra });

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DpopProofError);
    return (error as Error).message;
  }
  throw new Error('accepted');
}

describe.each(['ES256', 'EdDSA', 'Ed25519'])('%s proofs', (alg) => {
  it('verifies a proof jose made and returns jose\'s RFC 7638 thumbprint', async () => {
    const key = await keyPair(alg);
    expect(verify(await proof(key))).toEqual({ thumbprint: await calculateJwkThumbprint(key.jwk), jti: 'j-1', iat: NOW });
  });
});

describe('refusals', () => {
  it('refuses tampering, a foreign key, a wrong typ, alg confusion, private keys and junk as a key binding failure', async () => {
    const key = await keyPair('ES256');
    const other = await keyPair('ES256');
    const good = await proof(key);
    const [h, , s] = good.split('.') as [string, string, string];
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const binding = 'invalid DPoP key binding';

    expect(refusal(() => verify(`${h}.${b64({ htm: 'POST', htu: URL_, jti: 'j-2', iat: NOW })}.${s}`))).toBe(binding);
    // The header names one key, the signature is another's.
    expect(refusal(() => verify(`${b64({ alg: 'ES256', typ: 'dpop+jwt', jwk: other.jwk })}.${good.split('.')[1]}.${s}`))).toBe(binding);
    expect(refusal(() => verify(good, { algorithms: ['EdDSA'] }))).toBe(binding);
    expect(refusal(() => verify(`${b64({ alg: 'none', typ: 'dpop+jwt', jwk: key.jwk })}.${good.split('.')[1]}.`))).toBe(binding);
    expect(refusal(() => verify(`${b64({ alg: 'HS256', typ: 'dpop+jwt', jwk: key.jwk })}.${good.split('.')[1]}.${s}`))).toBe(binding);
    // A proof carrying a private key is refused even if the signature matches.
    const leaky = await proof(key, {}, { jwk: key.privateJwk });
    expect(refusal(() => verify(leaky))).toBe(binding);
    expect(refusal(() => verify('not.a.jwt'))).toBe(binding);
    expect(refusal(() => verify(`${good}.extra`))).toBe(binding);
    expect(refusal(() => verify(`${h}.${good.split('.')[1]}.${s}AA`))).toBe(binding);
  });

  it('refuses a wrong typ', async () => {
    const key = await keyPair('ES256');
    expect(refusal(() => verify(''))).toBe('invalid DPoP key binding');
    const jwt = await proof(key, {}, { typ: 'JWT' });
    expect(refusal(() => verify(jwt))).toBe('invalid DPoP key binding');
  });

  it('checks iat, jti, nonce, htm, htu and ath with oidc-provider\'s messages', async () => {
    const key = await keyPair('ES256');
    const cases: [Record<string, unknown>, string][] = [
      [{ iat: 'now' }, 'DPoP proof must have a iat number property'],
      [{ jti: 7 }, 'DPoP proof must have a jti string property'],
      [{ jti: '' }, 'DPoP proof must have a jti string property'],
      [{ nonce: 'n' }, 'DPoP nonces are not supported'],
      [{ iat: NOW - 301 }, 'DPoP proof iat is not recent enough'],
      [{ iat: NOW + 301 }, 'DPoP proof iat is not recent enough'],
      [{ htm: 'GET' }, 'DPoP proof htm mismatch'],
      [{ htu: 'https://gw.example/oidc/token/other' }, 'DPoP proof htu mismatch'],
      [{ htu: 'http://gw.example/oidc/token' }, 'DPoP proof htu mismatch'],
      [{ htu: 'not a url' }, 'DPoP proof htu mismatch'],
      [{ htu: 42 }, 'DPoP proof htu mismatch'],
    ];
    for (const [claims, message] of cases) {
      const value = await proof(key, claims);
      expect(refusal(() => verify(value)), JSON.stringify(claims)).toBe(message);
    }
    // Query and fragment are not part of the comparison (RFC 9449 §4.3 item 9); the window is inclusive.
    expect(verify(await proof(key, { htu: `${URL_}?x=1#f`, iat: NOW - 300 })).jti).toBe('j-1');

    const token = 'eyJ.access.token';
    const ath = createHash('sha256').update(token).digest('base64url');
    expect(verify(await proof(key, { ath }), { accessToken: token }).jti).toBe('j-1');
    const noAth = await proof(key);
    expect(refusal(() => verify(noAth, { accessToken: token }))).toBe('DPoP proof ath mismatch');
    const otherAth = await proof(key, { ath: createHash('sha256').update('other').digest('base64url') });
    expect(refusal(() => verify(otherAth, { accessToken: token }))).toBe('DPoP proof ath mismatch');
  });
});
