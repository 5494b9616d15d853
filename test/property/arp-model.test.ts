// ARP under random sequences of sends, replies, requests and time (fast-check): every packet
// handed to ARP is either sent once with a full, correct Ethernet header, still queued, or
// counted as dropped; packets to one address leave in the order they were sent; queues stay
// within their bound; resolution never asks more than the configured number of times.
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ARP_REPLY, ARP_REQUEST } from '../../src/arp/arp-packet.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { TX_HEADROOM } from '../../src/ipv4/ipv4.ts';
import { BROADCAST_MAC, parseMac } from '../../src/link/ethernet.ts';
import { createStack } from '../../src/stack.ts';
import { arpFrame, parseArpFrame, parseIpv4Frame, RecordingLink } from '../helpers/frames.ts';

const OUR_MAC = parseMac('02:00:00:00:00:02')!;
const OUR_IP = parseIpv4('10.0.0.2')!;
const PEERS = 4;
const peerIp = (i: number): number => parseIpv4('10.0.0.10')! + i;
const peerMac = (i: number): Buffer => parseMac(`02:00:00:00:01:0${i}`)!;
const QUEUE_LIMIT = 5;
const MAX_REQUESTS = 3;

type Action =
  | { kind: 'send'; peer: number }
  | { kind: 'reply'; peer: number }
  | { kind: 'request'; peer: number }
  | { kind: 'advance'; ms: number };

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('send' as const), peer: fc.nat({ max: PEERS - 1 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reply' as const), peer: fc.nat({ max: PEERS - 1 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('request' as const), peer: fc.nat({ max: PEERS - 1 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 40_000 }) }) },
);

test('random sends, replies, requests and time: conservation, order, bounds', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(action, { maxLength: 120 }), async (actions) => {
      const link = new RecordingLink();
      const clock = new VirtualClock();
      const stack = await createStack({ link, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', arp: { queueLimit: QUEUE_LIMIT, maxRequests: MAX_REQUESTS, retryMs: 1000, entryTtlMs: 30_000 } });
      link.take();
      let marker = 0;
      let delivered = 0;
      const lastMarker = new Array<number>(PEERS).fill(-1);
      const requestsSinceAnswer = new Array<number>(PEERS).fill(0);
      const check = (): void => {
        for (const f of link.take()) {
          const arp = parseArpFrame(f);
          if (arp) {
            assert.ok(arp.ethSrc.equals(OUR_MAC) && arp.senderMac.equals(OUR_MAC) && arp.senderIp === OUR_IP);
            const peer = arp.targetIp - peerIp(0);
            if (arp.op === ARP_REQUEST && peer >= 0 && peer < PEERS) {
              requestsSinceAnswer[peer]!++;
              assert.ok(requestsSinceAnswer[peer]! <= MAX_REQUESTS, `at most ${MAX_REQUESTS} requests before giving up`);
            }
            continue;
          }
          const ip = parseIpv4Frame(f);
          assert.ok(ip, 'an IPv4 frame');
          const peer = ip.dst - peerIp(0);
          assert.ok(f.subarray(0, 6).equals(peerMac(peer)), 'destination MAC is the peer\'s');
          assert.ok(f.subarray(6, 12).equals(OUR_MAC), 'source MAC is ours');
          const m = f.readUInt32BE(ip.payloadOffset);
          assert.ok(m > lastMarker[peer]!, 'in order per address');
          lastMarker[peer] = m;
          delivered++;
        }
        const queued = stack.arp.neighbours().reduce((n, e) => n + e.queued, 0);
        for (const e of stack.arp.neighbours()) assert.ok(e.queued <= QUEUE_LIMIT);
        const d = stack.arp.counters.drops;
        const dropped = (d['arp-timeout'] ?? 0) + (d['arp-queue-full'] ?? 0) + (d['arp-table-full'] ?? 0);
        assert.is(delivered + queued + dropped, marker, 'every packet sent, queued or counted');
      };
      for (const a of actions) {
        if (a.kind === 'send') {
          const buf = Buffer.alloc(TX_HEADROOM + 4);
          buf.writeUInt32BE(marker++, TX_HEADROOM);
          assert.is(stack.ipv4.send(253, peerIp(a.peer), buf, TX_HEADROOM, 4), null);
        } else if (a.kind === 'reply') {
          requestsSinceAnswer[a.peer] = 0;
          link.inject(arpFrame(OUR_MAC, { op: ARP_REPLY, senderMac: peerMac(a.peer), senderIp: peerIp(a.peer), targetMac: OUR_MAC, targetIp: OUR_IP }));
        } else if (a.kind === 'request') {
          requestsSinceAnswer[a.peer] = 0;
          link.inject(arpFrame(BROADCAST_MAC, { op: ARP_REQUEST, senderMac: peerMac(a.peer), senderIp: peerIp(a.peer), targetMac: Buffer.alloc(6), targetIp: OUR_IP }));
        } else {
          // Time passes in 1 s steps so that every timer's effect is checked as it happens.
          for (let t = 0; t < a.ms; t += 1000) {
            clock.advance(Math.min(1000, a.ms - t));
            check();
          }
          // An address given up on starts afresh.
          for (let p = 0; p < PEERS; p++) if (!stack.arp.neighbours().some((e) => e.ip === peerIp(p))) requestsSinceAnswer[p] = 0;
        }
        check();
      }
      await stack.close();
    }),
    { numRuns: 300, seed: 17 },
  );
});

test.run();
