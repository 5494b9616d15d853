// 64 MiB up and down with 3% of the frames dropped at random in both directions (nftables
// `numgen random` rules on the TAP inside the namespace; netem is not available here).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canUseTap } from '../helpers/root.ts';
import { addRandomLoss, lossCounts, upAndDown, withStack } from '../helpers/tcp-ns.ts';

const it = canUseTap ? test : test.skip;

// Without offloads every frame is one wire-sized segment, so 3% of frames is 3% of segments.
// With them the rules drop whole super-frames (up to 64 KB): bursts of consecutive segments.
// BBR (--congestion bbr) paces with Node's real timers: the same bytes, through its own path.
for (const [offload, congestion] of [
  ['off', 'cubic'],
  ['on', 'cubic'],
  ['on', 'bbr'],
] as const) {
  it(`64 MiB up and down arrive intact with 3% of frames lost each way (offload ${offload}, ${congestion})`, async () => {
    await withStack(
      async (ns) => {
        await addRandomLoss(ns, 'tap0', 3);
        const took = await upAndDown(ns, 300_000);
        // The loss really happened, in both directions.
        const lost = await lossCounts(ns);
        assert.ok(lost.toStack > 20 && lost.fromStack > 20, JSON.stringify(lost));
        process.stdout.write(`  offload ${offload}, ${congestion}: up ${took.upSecs} s, down ${took.downSecs} s, frames dropped ${JSON.stringify(lost)}\n`);
      },
      ['--offload', offload, '--congestion', congestion],
    );
  });
}

test.run();
