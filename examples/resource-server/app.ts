// The example resource server: a small ERP API and the same data as an MCP-style tool server,
// both protected by the gateway's agent tokens through agentgate/client. It shows the whole
// resource-server side of issue 6: requireAgentToken (strict verification, DPoP, scopes,
// revocation through the feed when a client is configured), RFC 9728 metadata, and the
// `resource_metadata` challenge an MCP client follows from a bare 401.
import express from 'express';
import type { Express } from 'express';

import { protectedResourceMetadata, requireAgentToken } from '../../src/client/index.ts';
import type { AgentTokenMiddleware, ClientCredentials, ClientLogger, FetchLike } from '../../src/client/index.ts';

export interface ResourceServerOptions {
  /** The gateway's issuer, e.g. http://localhost:8080. */
  issuer: string;
  /** This resource's identifier at the gateway (a `resources[].id`), e.g. https://erp.demo.agentgate.test. */
  audience: string;
  /** The resource server's own client (`resources[].client`): enables revocation. */
  client?: ClientCredentials;
  dpop?: 'required' | 'allowed';
  /** Seconds the revocation feed may be down before requests are introspected. */
  maxFeedOutage?: number;
  fetch?: FetchLike;
  logger?: Partial<ClientLogger>;
}

export interface ResourceServer {
  app: Express;
  auth: AgentTokenMiddleware;
  close(): Promise<void>;
}

interface Invoice {
  id: string;
  vendor: string;
  amount: number;
  currency: string;
  status: 'open' | 'approved';
}

const INVOICES: readonly Invoice[] = [
  { id: 'INV-1001', vendor: 'Acme Office Supplies', amount: 1240.5, currency: 'EUR', status: 'open' },
  { id: 'INV-1002', vendor: 'Northwind Logistics', amount: 8900, currency: 'EUR', status: 'open' },
  { id: 'INV-1003', vendor: 'Contoso Cloud', amount: 312.99, currency: 'EUR', status: 'approved' },
];

const TOOLS = [
  {
    name: 'list_invoices',
    description: 'Lists the invoices in the ERP (scope erp:read).',
    inputSchema: { type: 'object', properties: { status: { type: 'string', enum: ['open', 'approved'] } }, additionalProperties: false },
  },
];

export function createResourceServer(options: ResourceServerOptions): ResourceServer {
  const auth = requireAgentToken({
    issuer: options.issuer,
    audience: options.audience,
    ...(options.client ? { client: options.client } : {}),
    ...(options.dpop ? { dpop: options.dpop } : {}),
    ...(options.maxFeedOutage !== undefined ? { revocation: { maxFeedOutage: options.maxFeedOutage } } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const invoices = new Map(INVOICES.map((invoice) => [invoice.id, { ...invoice }]));

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);

  app.get('/.well-known/oauth-protected-resource', protectedResourceMetadata({
    resource: options.audience,
    issuer: options.issuer,
    scopes: ['erp:read', 'erp:approve'],
    dpopRequired: options.dpop === 'required',
    resourceName: 'Demo ERP (agentgate example)',
  }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', revocation: auth.revocationStatus() });
  });

  app.get('/invoices', auth.scopes('erp:read'), (req, res) => {
    const { person, agent, actors } = req.agentToken!;
    res.json({ invoices: [...invoices.values()], requestedBy: { person, agent, actors } });
  });

  app.post('/invoices/:id/approve', auth.scopes('erp:approve'), (req, res) => {
    const invoice = invoices.get(String(req.params.id));
    if (!invoice) {
      res.status(404).json({ error: 'not_found', error_description: `no invoice ${String(req.params.id)}` });
      return;
    }
    invoice.status = 'approved';
    res.json({ ...invoice, approvedBy: { person: req.agentToken!.person, agent: req.agentToken!.agent } });
  });

  // An MCP-style endpoint (JSON-RPC 2.0 over HTTP POST): the MCP authorization spec has a client
  // discover the authorization server from the 401's `resource_metadata` (RFC 9728 §5.1).
  app.post('/mcp', auth.scopes('erp:read'), express.json({ limit: '64kb' }), (req, res) => {
    const message = req.body as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: { name?: unknown; arguments?: { status?: unknown } } } | undefined;
    const id = typeof message?.id === 'string' || typeof message?.id === 'number' ? message.id : null;
    const reply = (result: unknown) => res.json({ jsonrpc: '2.0', id, result });
    const fail = (code: number, text: string) => res.json({ jsonrpc: '2.0', id, error: { code, message: text } });
    if (message?.jsonrpc !== '2.0' || typeof message.method !== 'string') {
      fail(-32600, 'Invalid Request');
      return;
    }
    switch (message.method) {
      case 'initialize':
        reply({ protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'agentgate-example-erp', version: '0.1.0' } });
        return;
      case 'tools/list':
        reply({ tools: TOOLS });
        return;
      case 'tools/call': {
        if (message.params?.name !== 'list_invoices') {
          fail(-32602, 'Unknown tool');
          return;
        }
        const status = message.params.arguments?.status;
        const list = [...invoices.values()].filter((invoice) => status === undefined || invoice.status === status);
        reply({ content: [{ type: 'text', text: JSON.stringify(list) }], structuredContent: { invoices: list } });
        return;
      }
      default:
        fail(-32601, 'Method not found');
    }
  });

  app.use((_req, res) => {
    res.status(404).json({ error: 'not_found', error_description: 'no such endpoint' });
  });

  return { app, auth, close: () => auth.close() };
}
