// Where the SDK reports what an operator should know (revocation not enforced, the feed down or
// back). Never a token, a secret or a proof. Default: Node's process warnings for `warn`
// (visible once, without a logging library), nothing for `info`. pino and console fit the shape.

export interface ClientLogger {
  warn(message: string): void;
  info(message: string): void;
}

export function resolveLogger(logger?: Partial<ClientLogger>): ClientLogger {
  return {
    warn: logger?.warn?.bind(logger) ?? ((message: string) => process.emitWarning(message, { code: 'AGENTGATE_CLIENT' })),
    info: logger?.info?.bind(logger) ?? (() => undefined),
  };
}
