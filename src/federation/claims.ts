// Reading identity fields out of ID-token claims by dotted path (`realm_access.roles`), as the
// generic preset lets operators configure.

export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  let node: unknown = claims;
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

export function stringClaim(claims: Record<string, unknown>, path: string): string | undefined {
  const value = claimAt(claims, path);
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** A list of strings (a single string counts as a one-item list); undefined when absent. */
export function stringListClaim(claims: Record<string, unknown>, path: string): string[] | undefined {
  const value = claimAt(claims, path);
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return undefined;
}
