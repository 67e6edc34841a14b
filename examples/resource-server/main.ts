// `npm run example:resource-server`: runs the example resource server against the gateway that
// `npm start` runs. Settings from the environment:
//   AGENTGATE_ISSUER        the gateway's issuer (default http://localhost:8080)
//   RESOURCE_AUDIENCE       this resource's id at the gateway (default https://erp.demo.agentgate.test)
//   RESOURCE_CLIENT_ID      the resource server's own client (resources[].client): enables revocation
//   RESOURCE_CLIENT_SECRET  its secret (both default to the demo's erp-api client when
//                           AGENTGATE_ISSUER is unset, i.e. against `npm start`; set
//                           RESOURCE_CLIENT_ID= empty to run without revocation)
//   RESOURCE_DPOP           "required" to accept DPoP-bound tokens only (default "allowed")
//   HOST, PORT              where to listen (default 127.0.0.1:8090)
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createResourceServer } from './app.ts';

const env = process.env;
const issuer = env.AGENTGATE_ISSUER ?? 'http://localhost:8080';
const audience = env.RESOURCE_AUDIENCE ?? 'https://erp.demo.agentgate.test';
// config/demo.yaml's resources[0].client: demo credentials only, on loopback.
const demo = env.AGENTGATE_ISSUER === undefined;
const clientId = env.RESOURCE_CLIENT_ID ?? (demo ? 'erp-api' : undefined);
const clientSecret = env.RESOURCE_CLIENT_SECRET ?? (demo && clientId === 'erp-api' ? 'demo-erp-api-secret-0123456789abcdef' : undefined);
const print = (line: string) => process.stdout.write(`${line}\n`);

if (Boolean(clientId) !== Boolean(clientSecret)) {
  process.stderr.write('RESOURCE_CLIENT_ID and RESOURCE_CLIENT_SECRET go together\n');
  process.exit(2);
}

const { app, close } = createResourceServer({
  issuer,
  audience,
  ...(clientId && clientSecret ? { client: { clientId, clientSecret } } : {}),
  dpop: env.RESOURCE_DPOP === 'required' ? 'required' : 'allowed',
  logger: { warn: (message) => process.stderr.write(`${message}\n`), info: print },
});

const server = createServer(app);
server.listen(Number(env.PORT ?? 8090), env.HOST ?? '127.0.0.1');
await once(server, 'listening');
const { address, port } = server.address() as AddressInfo;
const base = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
print(`example resource server on ${base} (audience ${audience}, issuer ${issuer})`);
print(`  GET  ${base}/.well-known/oauth-protected-resource`);
print(`  GET  ${base}/invoices                (erp:read)`);
print(`  POST ${base}/invoices/INV-1001/approve (erp:approve)`);
print(`  POST ${base}/mcp                     (JSON-RPC: initialize, tools/list, tools/call)`);
print(`revocation: ${clientId ? `through the gateway's feed as client ${clientId}` : 'NOT enforced (set RESOURCE_CLIENT_ID / RESOURCE_CLIENT_SECRET)'}`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  server.close();
  server.closeIdleConnections();
  await close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
