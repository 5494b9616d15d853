// 1,000 simultaneous connections from the kernel to the stack's echo service, each echoing
// its own message while all 1,000 are open.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canUseTap } from '../helpers/root.ts';
import { runTcpcli, withStack } from '../helpers/tcp-ns.ts';

const it = canUseTap ? test : test.skip;

it('1,000 simultaneous host connections are each echoed', async () => {
  await withStack(async (ns) => {
    const r = await runTcpcli(ns, ['conc', '10.0.0.2', '7', '1000'], 90_000);
    assert.is(r.opened, '1000', JSON.stringify(r));
    assert.is(r.connect_fail, '0');
    assert.is(r.echoed, '1000');
    assert.is(r.bad, '0');
    // And a new connection works after all of them closed.
    const after = await runTcpcli(ns, ['rr', '10.0.0.2', '7', '10', '64'], 30_000);
    assert.is(after.n, '10');
  });
});

test.run();
