// The Ethernet layer on its own: frames for our MAC or a group address go to the handler of
// their EtherType, the rest are dropped and counted; every frame in and out is counted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BROADCAST_MAC, emitEthernet, ETHERTYPE_ARP, ETHERTYPE_IPV4, parseMac } from '../../src/link/ethernet.ts';
import { EthernetLayer } from '../../src/link/ethernet-layer.ts';
import { emptyRxFrameInfo, type RxFrameInfo } from '../../src/link/vnet.ts';

const OURS = parseMac('02:00:00:00:00:02')!;
const OTHER = parseMac('02:00:00:00:00:09')!;
const PEER = parseMac('02:00:00:00:00:01')!;

function frame(dst: Buffer, type: number, payload = 'payload'): Buffer {
  const f = Buffer.alloc(14 + payload.length);
  emitEthernet(f, 0, dst, PEER, type);
  f.write(payload, 14);
  return f;
}

test('demux by EtherType, filter by destination, counters for every frame', () => {
  const sent: number[] = [];
  const eth = new EthernetLayer({ send: (_b, _o, len) => sent.push(len) }, OURS);
  const got: string[] = [];
  const infos: (RxFrameInfo | null)[] = [];
  eth.register(ETHERTYPE_IPV4, (buf, off, len, info) => {
    got.push(`ipv4 ${buf.toString('latin1', off, off + len)}`);
    infos.push(info);
  });
  eth.register(ETHERTYPE_ARP, (buf, off, len) => got.push(`arp ${buf.toString('latin1', off, off + len)}`));
  const info = emptyRxFrameInfo();
  eth.receive(frame(OURS, ETHERTYPE_IPV4, 'one'), 0, 17, info);
  eth.receive(frame(BROADCAST_MAC, ETHERTYPE_ARP, 'two'), 0, 17, null);
  eth.receive(frame(OTHER, ETHERTYPE_IPV4), 0, 21, null);
  eth.receive(frame(OURS, 0x86dd), 0, 21, null);
  eth.receive(Buffer.alloc(13), 0, 13, null);
  // With an offset into a larger buffer.
  const big = Buffer.concat([Buffer.alloc(5), frame(OURS, ETHERTYPE_IPV4, 'three')]);
  eth.receive(big, 5, 19, null);
  assert.equal(got, ['ipv4 one', 'arp two', 'ipv4 three']);
  assert.equal(infos, [info, null]);
  eth.send(Buffer.alloc(60), 0, 60);
  assert.equal(sent, [60]);
  assert.equal(eth.counters.toJSON(), { rx: 6, tx: 1, drops: { 'eth-not-for-us': 1, 'eth-unknown-type': 1, 'eth-short': 1 } });
});

test('registering an EtherType again replaces its handler', () => {
  const eth = new EthernetLayer({ send() {} }, OURS);
  const got: string[] = [];
  eth.register(ETHERTYPE_ARP, () => got.push('first'));
  eth.register(ETHERTYPE_ARP, () => got.push('second'));
  eth.receive(frame(OURS, ETHERTYPE_ARP), 0, 21, null);
  assert.equal(got, ['second']);
});

test.run();
