// The node:crypto JWS path against jose (differential) and against forgeries.
import { SignJWT, importJWK, jwtVerify, createLocalJWKSet } from 'jose';
import { describe, expect, it } from 'vitest';

import { createJwsSigner, createJwsVerifier } from './jws.ts';
import { generateSigningKey, publicJwks } from './jwk.ts';
import type { KeyAlg } from './jwk.ts';

describe.each<KeyAlg>(['ES256', 'EdDSA', 'RS256'])('%s', (alg) => {
  it('verifies what jose signs and jose verifies what it signs', async () => {
    const key = await generateSigningKey(alg);
    const keys = publicJwks({ keys: [key] });
    const signer = createJwsSigner(key);
    const verifier = createJwsVerifier(keys.keys);

    const ours = signer.sign({ sub: 'alice', n: 1 }, { typ: 'at+jwt' });
    const { payload, protectedHeader } = await jwtVerify(ours, createLocalJWKSet(keys), { algorithms: [alg] });
    expect(payload).toEqual({ sub: 'alice', n: 1 });
    expect(protectedHeader).toEqual({ typ: 'at+jwt', alg, kid: key.kid });

    const theirs = await new SignJWT({ sub: 'bob' }).setProtectedHeader({ alg, kid: key.kid, typ: 'at+jwt' }).sign(await importJWK(key, alg));
    expect(verifier.verify(theirs)).toEqual({ header: { alg, kid: key.kid, typ: 'at+jwt' }, payload: { sub: 'bob' } });
  });
});

describe('forgeries', () => {
  it('refuses tampering, unknown kids, alg swaps, none, crit, non-canonical and malformed tokens', async () => {
    const key = await generateSigningKey('ES256');
    const other = await generateSigningKey('ES256');
    const signer = createJwsSigner(key);
    const verifier = createJwsVerifier(publicJwks({ keys: [key] }).keys);
    const token = signer.sign({ sub: 'alice' });
    const [h, p, s] = token.split('.') as [string, string, string];
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

    expect(verifier.verify(token)).toBeDefined();
    expect(verifier.verify(`${h}.${b64({ sub: 'mallory' })}.${s}`)).toBeUndefined();
    expect(verifier.verify(createJwsSigner(other).sign({ sub: 'alice' }))).toBeUndefined();
    expect(verifier.verify(createJwsSigner({ ...other, kid: key.kid }).sign({ sub: 'alice' }))).toBeUndefined();
    expect(verifier.verify(`${b64({ alg: 'RS256', kid: key.kid })}.${p}.${s}`)).toBeUndefined();
    expect(verifier.verify(`${b64({ alg: 'none', kid: key.kid })}.${p}.`)).toBeUndefined();
    expect(verifier.verify(`${b64({ alg: 'HS256', kid: key.kid })}.${p}.${s}`)).toBeUndefined();
    expect(verifier.verify(createJwsSigner(key).sign({ sub: 'alice' }, { crit: ['exp'] }))).toBeUndefined();
    expect(verifier.verify(`${h}.${p}.${s}A`)).toBeUndefined();
    expect(verifier.verify(`${h}.${p}.${s.slice(0, -1)}+`)).toBeUndefined();
    expect(verifier.verify(`${h}.${p}`)).toBeUndefined();
    expect(verifier.verify(`${h}.${p}.${s}.x`)).toBeUndefined();
    expect(verifier.verify(`${b64([1])}.${p}.${s}`)).toBeUndefined();
    expect(verifier.verify('')).toBeUndefined();
  });
});
