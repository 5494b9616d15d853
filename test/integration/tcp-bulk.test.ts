// 64 MiB up and down between the kernel (curl) and the stack's HTTP service, compared by
// SHA-256: up as a POST /sha256 body, down as GET /bytes/67108864.
import { test } from 'uvu';
import { canUseTap } from '../helpers/root.ts';
import { upAndDown, withStack } from '../helpers/tcp-ns.ts';

const it = canUseTap ? test : test.skip;

it('64 MiB up (POST /sha256) and down (GET /bytes/67108864) arrive intact', async () => {
  await withStack(async (ns) => {
    const took = await upAndDown(ns, 120_000);
    process.stdout.write(`  64 MiB up in ${took.upSecs} s, down in ${took.downSecs} s\n`);
  });
});

test.run();
