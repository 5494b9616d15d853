// The learning switch: flooding until addresses are learned, forwarding to one port after,
// ageing, the bounded table, and stacks behind it that reach each other; in virtual time.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ICMP_ECHO_REQUEST } from '../../src/ipv4/icmp-packet.ts';
import { PROTO_ICMP } from '../../src/ipv4/ipv4-packet.ts';
import { TX_HEADROOM } from '../../src/ipv4/ipv4.ts';
import { emitEthernet, parseMac } from '../../src/link/ethernet.ts';
import { LinkDecorator } from '../../src/link/decorator.ts';
import { LINK_HEADROOM, type Link } from '../../src/link/link.ts';
import { LearningSwitch } from '../../src/link/switch.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { icmpMessage } from '../helpers/frames.ts';

function frame(dst: string, src: string, text: string): [Buffer, number, number] {
  const len = 14 + text.length;
  const b = Buffer.alloc(LINK_HEADROOM + len);
  emitEthernet(b, LINK_HEADROOM, parseMac(dst)!, parseMac(src)!, 0x88b5);
  b.write(text, LINK_HEADROOM + 14, 'latin1');
  return [b, LINK_HEADROOM, len];
}

test('floods a frame to an unknown address, then forwards to the learned port only', () => {
  const clock = new VirtualClock();
  const sw = new LearningSwitch(clock);
  const ports = [sw.connect(), sw.connect(), sw.connect()];
  const got: string[][] = ports.map(() => []);
  ports.forEach((p, i) => p.setReceiver((buf, off, len) => got[i]!.push(buf.toString('latin1', off + 14, off + len))));
  const A = '02:00:00:00:00:0a';
  const B = '02:00:00:00:00:0b';
  ports[0]!.send(...frame(B, A, 'a to b, b unknown'));
  clock.runAll();
  assert.equal(got, [[], ['a to b, b unknown'], ['a to b, b unknown']]);
  ports[1]!.send(...frame(A, B, 'b to a'));
  clock.runAll();
  assert.equal(got[0], ['b to a'], 'a was learned on port 0: only there');
  assert.equal(got[2], ['a to b, b unknown']);
  ports[0]!.send(...frame(B, A, 'a to b'));
  ports[2]!.send(...frame('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:0c', 'broadcast'));
  clock.runAll();
  assert.equal(got[1], ['a to b, b unknown', 'a to b', 'broadcast']);
  assert.equal(got[0], ['b to a', 'broadcast']);
  assert.equal(sw.counters, { forwarded: 2, flooded: 2, dropped: 0, learnRefused: 0 });
  assert.is(sw.portOf(parseMac(B)!), 1);
});

test('an address ages out after ageing_time (300 s) and its frames are flooded again', () => {
  const clock = new VirtualClock();
  const sw = new LearningSwitch(clock);
  const ports = [sw.connect(), sw.connect(), sw.connect()];
  const count = [0, 0, 0];
  ports.forEach((p, i) => p.setReceiver(() => count[i]!++));
  ports[1]!.send(...frame('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:0b', 'hello'));
  clock.runAll();
  clock.advance(299_000);
  ports[0]!.send(...frame('02:00:00:00:00:0b', '02:00:00:00:00:0a', 'known'));
  clock.runAll();
  assert.equal(count, [1, 1, 1]);
  clock.advance(300_001);
  assert.is(sw.portOf(parseMac('02:00:00:00:00:0b')!), null);
  ports[0]!.send(...frame('02:00:00:00:00:0b', '02:00:00:00:00:0a', 'aged'));
  clock.runAll();
  assert.equal(count, [1, 2, 2], 'flooded once the entry aged');
});

test('the table is bounded (fdb_max_learned): new addresses beyond it are not learned, known ones stay', () => {
  const clock = new VirtualClock();
  const sw = new LearningSwitch(clock, { maxEntries: 4 });
  const ports = [sw.connect(), sw.connect()];
  for (let i = 0; i < 10; i++) ports[i % 2]!.send(...frame('ff:ff:ff:ff:ff:ff', `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`, 'x'));
  clock.runAll();
  assert.is(sw.size, 4);
  assert.is(sw.counters.learnRefused, 6);
  assert.is(sw.portOf(parseMac('02:00:00:00:01:00')!), 0);
  assert.is(sw.portOf(parseMac('02:00:00:00:01:09')!), null);
  // Once the first ones age out, room comes back.
  clock.advance(301_000);
  ports[1]!.send(...frame('ff:ff:ff:ff:ff:ff', '02:00:00:00:01:09', 'x'));
  clock.runAll();
  assert.is(sw.portOf(parseMac('02:00:00:00:01:09')!), 1);
});

test('frames too short for Ethernet are dropped and counted; a frame for its own port is not sent back', () => {
  const clock = new VirtualClock();
  const sw = new LearningSwitch(clock);
  const ports = [sw.connect(), sw.connect()];
  const count = [0, 0];
  ports.forEach((p, i) => p.setReceiver(() => count[i]!++));
  ports[0]!.send(Buffer.alloc(LINK_HEADROOM + 10), LINK_HEADROOM, 10);
  ports[0]!.send(...frame('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:0a', 'learn'));
  ports[0]!.send(...frame('02:00:00:00:00:0a', '02:00:00:00:00:0b', 'to itself'));
  clock.runAll();
  assert.equal(count, [0, 1]);
  assert.is(sw.counters.dropped, 2);
});

async function pingAll(stacks: Stack[], clock: VirtualClock): Promise<void> {
  for (const from of stacks)
    for (const to of stacks) {
      if (from === to) continue;
      const msg = icmpMessage(ICMP_ECHO_REQUEST, 0, 0x770001, Buffer.alloc(32));
      const buf = Buffer.alloc(TX_HEADROOM + msg.length);
      msg.copy(buf, TX_HEADROOM);
      from.ipv4.send(PROTO_ICMP, to.ipv4.ip, buf, TX_HEADROOM, msg.length);
      clock.runAll(100);
    }
}

test('five stacks behind a switch: every pair pings, and after learning, unicast is forwarded, not flooded', async () => {
  const clock = new VirtualClock();
  const sw = new LearningSwitch(clock);
  const stacks: Stack[] = [];
  for (let i = 1; i <= 5; i++) stacks.push(await createStack({ link: sw.connect(), clock, ip: `10.0.0.${i}/24`, mac: `02:00:00:00:00:0${i}`, seed: i }));
  await pingAll(stacks, clock);
  for (const s of stacks) assert.is(s.icmp.counters.tx, 4, 'each answered the other four');
  const flooded = sw.counters.flooded;
  await pingAll(stacks, clock);
  assert.is(sw.counters.flooded, flooded, 'no more flooding once every address is known');
  assert.ok(sw.counters.forwarded >= 40);
  for (const s of stacks) await s.close();
});

test('the same seed gives the same frames through the switch, byte for byte', async () => {
  const run = async (): Promise<string[]> => {
    const clock = new VirtualClock();
    const sw = new LearningSwitch(clock);
    const seen: string[] = [];
    // Every frame each device sends, with its time, as a capture on its link would show.
    const watched = (link: Link, name: string): Link =>
      new (class extends LinkDecorator {
        override send(buf: Buffer, off: number, len: number): void {
          seen.push(`${clock.now()} ${name} ${buf.toString('hex', off, off + len)}`);
          super.send(buf, off, len);
        }
      })(link);
    const stacks: Stack[] = [];
    for (let i = 1; i <= 3; i++) stacks.push(await createStack({ link: watched(sw.connect(), `dev${i}`), clock, ip: `10.0.0.${i}/24`, mac: `02:00:00:00:00:0${i}`, seed: 7 + i }));
    await pingAll(stacks, clock);
    const server = stacks[0]!.createServer((s) => s.pipe(s));
    server.listen(7);
    const client = stacks[1]!.connect({ host: '10.0.0.1', port: 7 });
    client.write(Buffer.alloc(5000, 1));
    for (let i = 0; i < 50; i++) {
      clock.runAll(200);
      await new Promise((r) => setImmediate(r));
    }
    client.destroy();
    for (const s of stacks) await s.close();
    return seen;
  };
  const [a, b] = [await run(), await run()];
  assert.ok(a.length > 20, `${a.length} frames seen`);
  assert.equal(a, b);
});

test.run();
