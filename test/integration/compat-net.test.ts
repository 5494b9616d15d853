// Issue 11 items 1 and 2: each scenario of test/compat/net.ts gives the same record (events
// in order, error codes and messages, bytes) on Node's own net, in a namespace of its own,
// and on two tapstacks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { onNode, onTapstack } from '../helpers/node-reference.ts';
import { canUseTap } from '../helpers/root.ts';
import { scenarios } from '../compat/net.ts';

const FILE = 'test/compat/net.ts';
const it = canUseTap ? test : test.skip;

for (const name of Object.keys(scenarios)) {
  it(`${name}: as on Node's net`, async () => {
    const node = await onNode(FILE, name);
    // Through JSON as Node's record came (undefined in an array is null there).
    const ours = JSON.parse(JSON.stringify(await onTapstack(FILE, name)));
    assert.equal(ours, node);
  });
}

test.run();
