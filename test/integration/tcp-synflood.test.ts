// Done-when check: a 5-second hping3 SYN flood from random source addresses leaves the stack
// serving, with its memory bounded. The SYN-ACKs go to the gateway (the kernel), which does
// not forward them: the namespace has only lo and the TAP, so nothing leaves it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canUseTap } from '../helpers/root.ts';
import { fetchStats, withStack } from '../helpers/tcp-ns.ts';

const it = canUseTap ? test : test.skip;

interface Stats {
  ipv4: { rx: number };
  process: { rssBytes: number; heapUsedBytes: number };
}

it('a 5 s SYN flood from random sources leaves the stack serving, memory bounded', async () => {
  await withStack(async (ns) => {
    const links = await ns.exec('ip', ['-o', 'link', 'show']);
    assert.equal([...links.stdout.matchAll(/^\d+: ([^:@]+)/gm)].map((m) => m[1]).sort(), ['lo', 'tap0'], links.stdout);

    const before = (await fetchStats(ns)) as unknown as Stats;
    const flood = await ns.exec('timeout', ['5', 'hping3', '-S', '--flood', '--rand-source', '-p', '80', '10.0.0.2'], 30_000);
    assert.is(flood.code, 124, `hping3 should run until timeout ends it: ${flood.stderr}`);

    // Serving right after: a page, then a bulk transfer.
    const page = await ns.exec('curl', ['-sS', '--max-time', '15', '-o', '/dev/null', '-w', '%{http_code}', 'http://10.0.0.2/'], 20_000);
    assert.is(page.stdout, '200', page.stderr);
    const echo = await ns.exec('nc', ['-N', '-w', '10', '10.0.0.2', '7'], 15_000, 'after the flood\n');
    assert.is(echo.stdout, 'after the flood\n');

    const after = (await fetchStats(ns)) as unknown as Stats;
    const flooded = after.ipv4.rx - before.ipv4.rx;
    // The flood reached the stack (tens of thousands of SYNs at least) ...
    assert.ok(flooded > 20_000, `only ${flooded} IPv4 packets received during the flood`);
    // ... and every half-open connection it made did not stay in memory: a few hundred
    // bytes each would already be tens of MB; the bound is a bounded queue.
    const grew = after.process.rssBytes - before.process.rssBytes;
    assert.ok(grew < 96 * 1024 * 1024, `rss grew by ${(grew / 1e6).toFixed(1)} MB after ${flooded} packets`);
    process.stdout.write(`  flood: ${flooded} IPv4 packets received; rss ${(before.process.rssBytes / 1e6).toFixed(1)} -> ${(after.process.rssBytes / 1e6).toFixed(1)} MB\n`);
  });
});

test.run();
