// Done-when check: an nmap SYN scan of every TCP port of the stack finds exactly the service
// ports open, and every other port closed (answered with a RST, not silently dropped).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canUseTap } from '../helpers/root.ts';
import { withStack } from '../helpers/tcp-ns.ts';

const it = canUseTap ? test : test.skip;

it('nmap -sS -p- shows exactly 7, 9, 19 and 80 open, the rest closed', async () => {
  await withStack(async (ns) => {
    const r = await ns.exec('nmap', ['-sS', '-n', '-Pn', '-p-', '-T4', '--max-retries', '2', '-oG', '-', '10.0.0.2'], 180_000);
    assert.is(r.code, 0, r.stderr);
    const open = [...r.stdout.matchAll(/(\d+)\/open\/tcp/g)].map((m) => Number(m[1]));
    assert.equal(open, [7, 9, 19, 80], r.stdout);
    // Every other port answered with a RST: nmap reports them all as closed, none filtered.
    assert.match(r.stdout, /Ignored State: closed \(65531\)/, r.stdout);
  });
});

test.run();
