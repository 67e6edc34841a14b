import { it, expect } from 'vitest';
import { startSentinelSetup, startCluster } from '/work/main/test/support/redis-topologies.ts';
it('starts', async () => {
  let t = Date.now();
  const s = await startSentinelSetup();
  console.log('sentinel', Date.now() - t, s);
  t = Date.now();
  const c = await startCluster();
  console.log('cluster', Date.now() - t, c);
  t = Date.now();
  await s.dispose(); await c.dispose();
  console.log('dispose', Date.now() - t);
  expect(1).toBe(1);
}, 40000);
