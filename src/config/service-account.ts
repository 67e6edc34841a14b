// Google service account keys, as Google issues them (JSON with client_email and a PKCS#8 PEM
// private_key): parsed here so a wrong file is a config error with its path, not a sign-in failure.

export interface ServiceAccountKey {
  client_email: string;
  private_key: string;
  private_key_id?: string;
}

/** Parses the key JSON; undefined when it is not one. */
export function parseServiceAccountKey(json: string): ServiceAccountKey | undefined {
  try {
    const key = JSON.parse(json) as Partial<ServiceAccountKey>;
    if (typeof key.client_email === 'string' && typeof key.private_key === 'string' && key.private_key.includes('PRIVATE KEY')) {
      return { client_email: key.client_email, private_key: key.private_key, ...(typeof key.private_key_id === 'string' ? { private_key_id: key.private_key_id } : {}) };
    }
  } catch {
    // not JSON
  }
  return undefined;
}
