// The soak's rounds (test/soak/round.ts) for the seeds that once failed, kept as regression
// cases, and a few fresh ones, with the determinism check on one. `npm run soak` runs many
// more for longer; a seed it reports goes into KEPT with what it found.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runRound } from '../soak/round.ts';

/** Seeds the soak found failing, and what they found (all fixed). */
const KEPT: { seed: number; found: string }[] = [
  { seed: 1, found: 'a LAND SYN from the link looped through loopback (issue 10 item 1): 3,000,000 timers' },
  { seed: 18, found: 'a blind SYN spoofing the victim as source looped the same way (item 1)' },
  { seed: 46, found: 'an orphan in FIN-WAIT-2 after end() then destroy() was never timed out (item 6)' },
  { seed: 166, found: "a socket's idle timer re-armed for a remainder too small to move the clock: 3,000,000 timers at one instant" },
];

const FRESH = [101, 202, 303];

for (const { seed, found } of KEPT)
  test(`soak seed ${seed} (found: ${found})`, async () => {
    const r = await runRound(seed);
    assert.equal(r.failures, [], `seed ${seed}: ${r.failures.join('\n')}`);
  });

for (const seed of FRESH)
  test(`soak seed ${seed}`, async () => {
    const r = await runRound(seed);
    assert.equal(r.failures, [], `seed ${seed}: ${r.failures.join('\n')}`);
  });

test('the same seed gives the same frames', async () => {
  const a = await runRound(7, { hashFrames: true, noHttp: true });
  const b = await runRound(7, { hashFrames: true, noHttp: true });
  assert.equal(a.failures, []);
  assert.ok(a.frames > 0, 'frames were sent');
  assert.is(a.frameHash, b.frameHash);
});

test.run();
