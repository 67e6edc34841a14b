import { describe, expect, it } from 'vitest';

import { createReplayCache } from './replay-cache.ts';

describe('DPoP replay cache', () => {
  it('accepts a proof once while it can be presented, and forgets it after its window', () => {
    let t = 1000;
    const cache = createReplayCache(() => t);
    expect(cache.use('k:a', 1300)).toBe(true);
    expect(cache.use('k:a', 1300)).toBe(false);
    expect(cache.use('k:b', 1010)).toBe(true);
    t = 1011;
    expect(cache.use('k:c', 1311)).toBe(true);
    // k:b's window has passed: swept, so the cache holds one window of proofs at most.
    expect(cache.size).toBe(2);
    t = 1400;
    expect(cache.use('k:d', 1700)).toBe(true);
    expect(cache.size).toBe(1);
  });
});
