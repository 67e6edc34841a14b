// What the admin console shows of each identity provider's health: its own probe (discovery and
// JWKS, or SAML metadata, reachable and sane — the checks `agentgate idp test` runs), SAML signing
// certificates' expiry, and the last successful sign-in through it, recorded by the interaction
// that completes a federated sign-in (`idp:lastsignin:{idp}`, kept 90 days).
import type { Connector, ProbeCheck } from '../federation/index.ts';
import { isSamlConnector, probeWithin } from '../federation/index.ts';
import type { Store } from '../store/index.ts';

const LAST_SIGN_IN_TTL = 90 * 24 * 3600;
export const lastSignInKey = (idp: string) => `idp:lastsignin:${idp}`;

export interface SignInRecorder {
  record(idp: string): Promise<void>;
  /** Seconds since the epoch, per IdP id, in order; undefined for none in the last 90 days. */
  last(idps: readonly string[]): Promise<(number | undefined)[]>;
}

export function createSignInRecorder(store: Store, now: () => number = () => Math.floor(Date.now() / 1000)): SignInRecorder {
  return {
    async record(idp) {
      await store.set(lastSignInKey(idp), String(now()), { ttl: LAST_SIGN_IN_TTL });
    },
    async last(idps) {
      if (idps.length === 0) return [];
      return (await store.getMany(idps.map(lastSignInKey))).map((value) => (value === null ? undefined : Number(value)));
    },
  };
}

export interface IdpHealth {
  id: string;
  type: 'oidc' | 'saml';
  displayName: string;
  checks: ProbeCheck[];
  /** SAML: each signing certificate's end (seconds since the epoch). */
  certificates: { fingerprint: string; notAfter: number }[];
  lastSignIn?: number;
}

/** Probes every IdP at once, each bounded by `timeoutMs` (a slow IdP shows as failing, not as a hung page). */
export async function idpHealth(connectors: Iterable<Connector>, recorder: SignInRecorder, timeoutMs = 5000): Promise<IdpHealth[]> {
  const list = [...connectors];
  const last = await recorder.last(list.map((c) => c.id));
  return Promise.all(list.map(async (connector, i) => {
    const checks = await probeWithin(connector, timeoutMs);
    const lastSignIn = last[i];
    return {
      id: connector.id, type: connector.type, displayName: connector.displayName, checks,
      certificates: isSamlConnector(connector) ? connector.signingCertificates().map((c) => ({ fingerprint: c.fingerprint, notAfter: c.notAfter })) : [],
      ...(lastSignIn !== undefined ? { lastSignIn } : {}),
    };
  }));
}
