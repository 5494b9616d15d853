// Done-when check: a 5-second hping3 SYN flood from random source addresses leaves the stack
// serving, with its memory bounded. The SYN-ACKs go to the gateway (the kernel), which does
// not forward them: the namespace has only lo and the TAP, so nothing leaves it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canUseTap } from '../helpers/root.ts';
import { fetchStats, withStack } from '../helpers/tcp-ns.ts';

const it = canUseTap ? test : test.skip;

interface Stats {
  tcp: { rx: number; tx: number };
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
    const flooded = after.tcp.rx - before.tcp.rx;
    const answered = after.tcp.tx - before.tcp.tx;
    // The flood reached TCP (tens of thousands of SYNs at least), which answered them ...
    assert.ok(flooded > 20_000, `only ${flooded} TCP segments received during the flood`);
    assert.ok(answered > 20_000, `only ${answered} TCP segments sent during the flood`);
    // ... and the half-open connections did not all stay in memory: even 200 bytes for each
    // would be tens of MB; a bounded SYN queue (and SYN cookies beyond it) keeps it flat.
    const rssGrew = after.process.rssBytes - before.process.rssBytes;
    const heapGrew = after.process.heapUsedBytes - before.process.heapUsedBytes;
    const mb = (n: number): string => (n / 1e6).toFixed(1);
    assert.ok(rssGrew < 96e6, `rss grew by ${mb(rssGrew)} MB after ${flooded} SYNs`);
    assert.ok(heapGrew < 48e6, `heap grew by ${mb(heapGrew)} MB after ${flooded} SYNs`);
    process.stdout.write(
      `  flood: ${flooded} segments in, ${answered} out; rss ${mb(before.process.rssBytes)} -> ${mb(after.process.rssBytes)} MB, ` +
        `heap ${mb(before.process.heapUsedBytes)} -> ${mb(after.process.heapUsedBytes)} MB\n`,
    );
  });
});

test.run();
