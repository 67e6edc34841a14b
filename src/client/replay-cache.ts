// The DPoP proof replay cache of one resource server process (RFC 9449 §11.1): a proof's `jti`
// is accepted once per key. A proof is only accepted while its `iat` is within the window, so an
// entry is kept until `iat + window` and then dropped: the cache never holds more than the
// proofs of one window. In memory by design: a replica cannot replay into another replica's
// cache, but each proof names this server's URL and method, and `ath` binds it to one token.

export interface ReplayCache {
  /** Records the proof; false when it was seen before (a replay). */
  use(key: string, expiresAt: number): boolean;
  readonly size: number;
}

export function createReplayCache(now: () => number): ReplayCache {
  const seen = new Map<string, number>();
  let nextSweep = 0;

  function sweep(t: number): void {
    for (const [key, expiresAt] of seen) if (expiresAt < t) seen.delete(key);
  }

  return {
    use(key, expiresAt) {
      const t = now();
      // Sweeping at most once a second keeps `use` O(1) amortized.
      if (t >= nextSweep) {
        sweep(t);
        nextSweep = t + 1;
      }
      const previous = seen.get(key);
      if (previous !== undefined && previous >= t) return false;
      seen.set(key, expiresAt);
      return true;
    },
    get size() {
      return seen.size;
    },
  };
}
