// The README's "A stack over a link, in tests" example, kept working.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLinkPair, createStack, parseIpv4, VirtualClock } from '../../src/index.ts';
import { emitIcmp, ICMP_ECHO_REQUEST } from '../../src/ipv4/icmp-packet.ts';
import { PROTO_ICMP } from '../../src/ipv4/ipv4-packet.ts';
import { TX_HEADROOM } from '../../src/ipv4/ipv4.ts';

test('two stacks on an in-memory cable: b answers a', async () => {
  const clock = new VirtualClock();
  const [linkA, linkB] = createLinkPair(clock);
  const a = await createStack({ link: linkA, clock, ip: '10.0.0.1/24' });
  const b = await createStack({ link: linkB, clock, ip: '10.0.0.2/24' });
  const buf = Buffer.alloc(TX_HEADROOM + 8 + 4);
  const len = emitIcmp(buf, TX_HEADROOM, { type: ICMP_ECHO_REQUEST, code: 0, rest: 1, data: Buffer.from('ping') });
  assert.is(a.ipv4.send(PROTO_ICMP, parseIpv4('10.0.0.2')!, buf, TX_HEADROOM, len), null);
  clock.runAll(1000);
  assert.equal(b.counters().icmp, { rx: 1, tx: 1, drops: {} });
  assert.is(a.counters().icmp!.drops['icmp-echo-reply-unsolicited'], 1);
  await a.close();
  await b.close();
});

test.run();
