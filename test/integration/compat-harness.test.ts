// The compatibility harness itself (test/helpers/node-reference.ts): a scenario gives the
// same record on Node's own net (in a namespace) and on two tapstacks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { onNode, onTapstack } from '../helpers/node-reference.ts';
import { canUseTap } from '../helpers/root.ts';

const FILE = 'test/compat/example.ts';
const it = canUseTap ? test : test.skip;

it('an echo: the same client events and bytes on Node and on tapstack', async () => {
  const node = await onNode(FILE, 'echo');
  const ours = await onTapstack(FILE, 'echo');
  assert.equal(ours, node);
});

test.run();
