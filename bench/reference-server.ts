// Reference (b) for bench/exchange.ts: the least a token exchange can cost on this stack — a bare
// node:http round trip that verifies one JWT and signs one JWT (jose, keys imported once).
// Usage: node bench/reference-server.ts PORT KEYFILE
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import { createLocalJWKSet, importJWK, jwtVerify, SignJWT } from 'jose';

const [port = '0', keyFile = ''] = process.argv.slice(2);
const { keys } = JSON.parse(readFileSync(keyFile, 'utf8')) as { keys: (Record<string, string> & { kid: string; alg: string })[] };
const signingJwk = keys[0]!;
const signingKey = await importJWK(signingJwk, signingJwk.alg);
const { d: _d, ...publicJwk } = signingJwk;
const verifyKeys = createLocalJWKSet({ keys: [publicJwk] });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', async () => {
    try {
      const token = new URLSearchParams(Buffer.concat(chunks).toString()).get('subject_token') ?? '';
      const { payload } = await jwtVerify(token, verifyKeys, { algorithms: [signingJwk.alg], typ: 'at+jwt' });
      const now = Math.floor(Date.now() / 1000);
      const issued = await new SignJWT({ sub: payload.sub, client_id: 'bench-agent', scope: 'erp:read', act: { sub: 'bench-agent' } })
        .setProtectedHeader({ alg: signingJwk.alg, typ: 'at+jwt', kid: signingJwk.kid })
        .setIssuedAt(now).setExpirationTime(now + 300).setAudience('https://erp.bench.test').sign(signingKey);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: issued, token_type: 'Bearer', expires_in: 300 }));
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"error":"invalid_grant"}');
    }
  });
});
server.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
