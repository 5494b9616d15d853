// Node's own dgram (in a namespace) and tapstack's stack.dgram give the same record for each
// scenario of test/compat/dgram.ts: callbacks, errors and their codes, events in order, bytes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { onNode, onTapstack } from '../helpers/node-reference.ts';
import { canUseTap } from '../helpers/root.ts';

const FILE = 'test/compat/dgram.ts';
const it = canUseTap ? test : test.skip;
/** Node multicasts over the namespace's loopback once it has a route for 224/4 there. */
const MULTICAST_ROUTE = [['ip', 'route', 'add', '224.0.0.0/4', 'dev', 'lo']] as const;

const cases: [string, string, boolean][] = [
  ['sendCallbacks', 'every send signature calls its callback (err, bytes); errors go to it, never to an event', false],
  ['socketErrors', 'misuse before bind, after bind and after close throws what Node throws; buffer sizes as Linux', false],
  ['connectEvents', "connect: 'listening' then 'connect', not connected before, sends, disconnect, close", false],
  ['bindEvents', 'bind: events in order, bind twice, a taken port, reuseAddr, close callbacks', false],
  ['multicastErrors', 'memberships: the errnos of Linux, igmp_max_memberships, igmp_max_msf, the implicit bind', true],
  ['multicastDelivery', 'group datagrams reach every socket on the port while the host is a member, and a source-specific one', true],
];

for (const [name, title, multicast] of cases)
  it(`${name}: ${title}`, async () => {
    const node = await onNode(FILE, name, 30_000, multicast ? MULTICAST_ROUTE : []);
    const ours = await onTapstack(FILE, name);
    assert.equal(ours, node);
  });

test.run();
