// The router's DHCP relay agent (src/dhcp/relay.ts, RFC 1542 4, RFC 2131 4.1) in virtual time:
// a client on 10.1.0.0/16 gets its lease from a server on 10.0.0.0/24 through the router
// (giaddr, hops, the server's reply to giaddr port 67 handed to the client), then renews with
// the server directly; requests keep the bytes they came with but for hops and giaddr, go no
// further than the hop limit; replies are broadcast or unicast as the BROADCAST flag and
// ciaddr say, and only for our giaddr; garbage is counted, never thrown.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BOOTREPLY, BOOTREQUEST, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DHCPACK, DHCPDISCOVER, DHCPREQUEST, emitDhcp, emptyDhcpMessage } from '../../src/dhcp/dhcp-message.ts';
import { LinkDecorator } from '../../src/link/decorator.ts';
import { createLinkPair } from '../../src/link/memory.ts';
import { Router } from '../../src/router.ts';
import { createStack, type Stack, type StackOptions } from '../../src/stack.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { dhcpServer, type DhcpServerOptions, runFor } from '../helpers/net-services.ts';

const CLIENT_MAC = '02:00:00:00:01:02';
const GIADDR = 0x0a010001; // 10.1.0.1

/** UDP datagrams to port 68 the client's link delivers: Ethernet and IP destinations. */
class DhcpReplyWatch extends LinkDecorator {
  readonly replies: { mac: string; ip: string }[] = [];
  protected override receive(buf: Buffer, off: number, len: number, info: null): void {
    if (len >= 42 && buf.readUInt16BE(off + 12) === 0x0800 && buf[off + 23] === 17 && buf.readUInt16BE(off + 36) === DHCP_CLIENT_PORT)
      this.replies.push({ mac: buf.toString('hex', off, off + 6), ip: [...buf.subarray(off + 30, off + 34)].join('.') });
    super.receive(buf, off, len, info);
  }
}

async function topology(client: Partial<StackOptions>, server: DhcpServerOptions) {
  const clock = new VirtualClock();
  const [serverLink, r0] = createLinkPair(clock, { latencyMs: 1 });
  const [r1, clientLink] = createLinkPair(clock, { latencyMs: 1 });
  const watch = new DhcpReplyWatch(clientLink);
  const serverStack = await createStack({ link: serverLink, clock, ip: '10.0.0.1/24', gateway: '10.0.0.2', mac: '02:00:00:00:00:01', seed: 1 });
  const srv = dhcpServer(serverStack, server);
  const router = await Router.create({
    clock,
    seed: 10,
    interfaces: [
      { link: r0, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02' },
      { link: r1, ip: '10.1.0.1/16', mac: '02:00:00:00:01:01' },
    ],
    dhcpRelay: { server: '10.0.0.1' },
  });
  const clientStack = await createStack({ link: watch, clock, mac: CLIENT_MAC, seed: 7, ...client } as StackOptions);
  const close = async (): Promise<void> => {
    for (const s of [clientStack, serverStack]) await s.close();
    await router.close();
  };
  return { clock, serverStack, srv, router, relay: router.dhcpRelay!, clientStack, watch, close };
}

const pool: DhcpServerOptions = { pool: ['10.1.0.50'], subnetMask: 0xffff0000, routers: ['10.1.0.1'], dnsServers: ['10.0.0.1'], leaseTime: 600 };

test('a lease through the relay: giaddr and hops on the way in, the reply to giaddr handed to the client; renewal goes to the server directly', async () => {
  const { clock, serverStack, srv, relay, clientStack, watch, close } = await topology({ dhcp: { arpProbe: false } }, pool);
  await runFor(clock, 10_000);
  assert.is(clientStack.dhcp!.state, 'bound');
  assert.is(clientStack.address, '10.1.0.50');
  assert.is(clientStack.dhcp!.lease!.gateway, '10.1.0.1');
  assert.equal(srv.types(), [DHCPDISCOVER, DHCPREQUEST]);
  for (const s of srv.seen) {
    assert.is(s.message.giaddr, GIADDR, 'giaddr: the interface the request came in on');
    assert.is(s.message.hops, 1);
    assert.is(s.to, '10.0.0.2', 'unicast from the server-side interface');
  }
  assert.equal(relay.counters, { requests: 2, replies: 2, broadcastInstead: 0, malformed: 0, tooManyHops: 0, notOurGiaddr: 0, sendErrors: 0 });
  // The client asked for broadcast (it had no address): both replies were broadcast.
  assert.equal(watch.replies.map((r) => r.mac), ['ffffffffffff', 'ffffffffffff']);

  // The lease works across the router.
  const got: string[] = [];
  serverStack.createServer((s) => s.on('data', (d: Buffer) => got.push(d.toString()))).listen(7);
  clientStack.connect({ host: '10.0.0.1', port: 7 }).end('through');
  await runFor(clock, 1000);
  assert.equal(got, ['through']);

  // T1 (300 s): RENEWING unicasts to the server itself, through the router but not the relay.
  await runFor(clock, 300_000);
  assert.is(srv.seen.length, 3);
  assert.is(srv.seen[2]!.message.ciaddr, 0x0a010032);
  assert.is(srv.seen[2]!.message.giaddr, 0);
  assert.is(srv.seen[2]!.to, '10.1.0.50');
  assert.is(clientStack.dhcp!.state, 'bound');
  assert.is(relay.counters.requests, 2);
  await close();
});

/** A BOOTREQUEST or BOOTREPLY with options the codec does not model (82, relay agent information) after type 53. */
function rawMessage(op: number, fields: { hops?: number; giaddr?: number; ciaddr?: number; broadcast?: boolean }): Buffer {
  const m = emptyDhcpMessage(op, 0x1234, Buffer.from([2, 0, 0, 0, 1, 2]));
  m.messageType = op === BOOTREQUEST ? DHCPDISCOVER : DHCPACK;
  m.hops = fields.hops ?? 0;
  m.giaddr = fields.giaddr ?? 0;
  m.ciaddr = fields.ciaddr ?? 0;
  m.yiaddr = op === BOOTREPLY ? 0x0a010032 : 0;
  m.broadcast = fields.broadcast ?? false;
  const buf = Buffer.alloc(600);
  const n = emitDhcp(m, buf);
  // 240: the cookie's end; 53, 1, type, then END at 243, overwritten with option 82 and END.
  Buffer.from([82, 6, 1, 4, 0xde, 0xad, 0xbe, 0xef, 255]).copy(buf, 243);
  return buf.subarray(0, n);
}

test('requests: bytes kept but for hops and giaddr; another relay giaddr kept; over the hop limit or malformed: dropped', async () => {
  const { clock, srv, relay, clientStack, close } = await topology({ ip: '10.1.0.9/16', gateway: '10.1.0.1' }, { ...pool, answer: () => false });
  const socket = clientStack.createSocket('udp4');
  socket.bind(DHCP_CLIENT_PORT);
  socket.setBroadcast(true);
  const sent = rawMessage(BOOTREQUEST, { hops: 3, giaddr: 0x0a090001 });
  socket.send(sent, DHCP_SERVER_PORT, '255.255.255.255');
  socket.send(rawMessage(BOOTREQUEST, { hops: 4 }), DHCP_SERVER_PORT, '255.255.255.255');
  socket.send(Buffer.from('not dhcp at all'), DHCP_SERVER_PORT, '255.255.255.255');
  // Unicast to the relay's address is relayed too.
  socket.send(rawMessage(BOOTREQUEST, {}), DHCP_SERVER_PORT, '10.1.0.1');
  await runFor(clock, 1000);
  assert.is(srv.seen.length, 2);
  const relayed = srv.seen[0]!.raw;
  assert.is(relayed[3], 4, 'hops + 1');
  assert.is(relayed.readUInt32BE(24), 0x0a090001, "the first relay's giaddr stays");
  relayed[3] = sent[3]!;
  assert.ok(relayed.equals(sent), 'every other byte as sent, option 82 included');
  assert.is(srv.seen[1]!.message.giaddr, GIADDR);
  assert.is(srv.seen[1]!.message.hops, 1);
  assert.is(relay.counters.requests, 2);
  assert.is(relay.counters.tooManyHops, 1);
  assert.is(relay.counters.malformed, 1);
  await close();
});

test('replies: broadcast when asked, unicast to ciaddr, broadcast for a client without an address; not our giaddr: dropped; other UDP to giaddr: not taken', async () => {
  const { clock, serverStack, router, relay, watch, close } = await topology({ ip: '10.1.0.9/16', gateway: '10.1.0.1' }, { ...pool, answer: () => false });
  const socket = serverStack.createSocket('udp4');
  const send = (m: Buffer): void => socket.send(m, DHCP_SERVER_PORT, '10.1.0.1');
  send(rawMessage(BOOTREPLY, { giaddr: GIADDR, broadcast: true }));
  await runFor(clock, 100);
  send(rawMessage(BOOTREPLY, { giaddr: GIADDR, ciaddr: 0x0a010009 }));
  await runFor(clock, 100);
  send(rawMessage(BOOTREPLY, { giaddr: GIADDR }));
  send(rawMessage(BOOTREPLY, { giaddr: 0x0a01004d }));
  socket.send(Buffer.from('x'), 9, '10.1.0.1');
  await runFor(clock, 1000);
  const clientMac = CLIENT_MAC.replaceAll(':', '');
  assert.equal(watch.replies, [
    { mac: 'ffffffffffff', ip: '255.255.255.255' },
    { mac: clientMac, ip: '10.1.0.9' },
    { mac: 'ffffffffffff', ip: '255.255.255.255' },
  ]);
  assert.is(relay.counters.replies, 3);
  assert.is(relay.counters.broadcastInstead, 1);
  assert.is(relay.counters.notOurGiaddr, 1);
  assert.is(router.counters.otherInterface, 1, 'the datagram to port 9 of the other interface is dropped as before');
  await close();
});

test('a relay whose server the router cannot reach is a configuration error', async () => {
  const clock = new VirtualClock();
  const [a] = createLinkPair(clock);
  const error = await Router.create({ clock, interfaces: [{ link: a!, ip: '10.0.0.2/24' }], dhcpRelay: { server: '192.168.5.1' } }).catch((e: Error) => e);
  assert.match(String(error), /none of the router's subnets/);
});

test.run();
