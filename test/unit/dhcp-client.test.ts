// The DHCP client (src/dhcp/client.ts) against a small DHCP server on an in-memory link, in
// virtual time: DORA, renewal at T1, rebinding at T2, expiry, NAK, a silent server (RFC 2131
// 4.1 backoff), an ARP conflict (DECLINE, 10 s, again), INIT-REBOOT.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DHCPDECLINE, DHCPDISCOVER, DHCPRELEASE, DHCPREQUEST } from '../../src/dhcp/dhcp-message.ts';
import type { DhcpLease, DhcpOptions } from '../../src/dhcp/client.ts';
import { createLinkPair } from '../../src/link/memory.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { dhcpServer, type DhcpServerOptions, runFor } from '../helpers/net-services.ts';

async function setup(server: DhcpServerOptions, dhcp: DhcpOptions = { arpProbe: false }, seed = 7) {
  const clock = new VirtualClock();
  const [ls, lc] = createLinkPair(clock, { latencyMs: 1 });
  const serverStack = await createStack({ link: ls, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1 });
  const srv = dhcpServer(serverStack, server);
  const client = await createStack({ link: lc, clock, dhcp, mac: '02:00:00:00:00:02', seed });
  const events: [string, unknown][] = [];
  for (const e of ['bound', 'renewed', 'renewing', 'rebinding', 'expired', 'declined', 'nak', 'warning']) client.dhcp!.on(e, (x: unknown) => events.push([e, x]));
  return { clock, serverStack, srv, client, events, dhcp: client.dhcp! };
}

const close = async (...stacks: Stack[]): Promise<void> => {
  for (const s of stacks) await s.close();
};

test('DORA: DISCOVER, OFFER, REQUEST, ACK binds the address, gateway and DNS servers', async () => {
  const { clock, serverStack, srv, client, events, dhcp } = await setup({ pool: ['10.0.0.42'], dnsServers: ['10.0.0.1'] });
  assert.is(client.address, '0.0.0.0');
  await runFor(clock, 100);
  assert.is(dhcp.state, 'bound');
  assert.equal(srv.types(), [DHCPDISCOVER, DHCPREQUEST]);
  // Before an address: from 0.0.0.0, to the broadcast address, asking for broadcast replies.
  assert.is(srv.seen[0]!.message.broadcast, true);
  assert.is(srv.seen[1]!.message.requestedIp, 0x0a00002a);
  assert.is(srv.seen[1]!.message.serverId, 0x0a000001);
  assert.is(client.address, '10.0.0.42');
  assert.is(client.prefix, 24);
  const lease = events.find(([e]) => e === 'bound')![1] as DhcpLease;
  assert.is(lease.gateway, '10.0.0.1');
  assert.equal(lease.dnsServers, ['10.0.0.1']);
  assert.is(lease.leaseTime, 3600);
  // Four one-way trips of 1 ms.
  assert.is(lease.obtainedAt, 4);
  // The bound client holds no socket: nothing bound on port 68.
  assert.is(client.counters().udp!.tx, 2);
  // It answers ping and TCP on its new address.
  const got: string[] = [];
  const server = client.createServer((s) => s.on('data', (d: Buffer) => got.push(d.toString())));
  server.listen(7);
  const c = serverStack.connect({ host: '10.0.0.42', port: 7 });
  c.on('connect', () => c.write('hello'));
  await runFor(clock, 100);
  assert.equal(got, ['hello']);
  c.destroy();
  await close(client, serverStack);
});

test('RFC 5227 probe before use; a conflict gives DECLINE, then 10 s later a new DISCOVER', async () => {
  // The first address offered is the server's own: its ARP answers the probe.
  const { clock, serverStack, srv, client, events, dhcp } = await setup({ pool: ['10.0.0.1', '10.0.0.43'] }, {});
  await runFor(clock, 3000);
  assert.is(dhcp.state, 'declined');
  assert.equal(events.map(([e]) => e), ['declined']);
  assert.is(events[0]![1], '10.0.0.1');
  const decline = srv.seen.find((s) => s.type === DHCPDECLINE)!;
  assert.is(decline.message.requestedIp, 0x0a000001);
  assert.is(client.address, '0.0.0.0');
  await runFor(clock, 20_000);
  assert.is(dhcp.state, 'bound');
  assert.is(client.address, '10.0.0.43');
  const discovers = srv.seen.filter((s) => s.type === DHCPDISCOVER);
  assert.is(discovers.length, 2);
  assert.ok(discovers[1]!.at - decline.at >= 10_000, `restart ${discovers[1]!.at - decline.at} ms after DECLINE`);
  // The second probe found nobody: bound after PROBE_WAIT + 2 gaps + ANNOUNCE_WAIT (RFC 5227).
  const bound = events.find(([e]) => e === 'bound')![1] as DhcpLease;
  const probing = bound.obtainedAt;
  assert.ok(probing > discovers[1]!.at);
  await close(client, serverStack);
});

test('renewal at T1 (unicast to the server), rebinding at T2 (broadcast), expiry drops the address', async () => {
  // The server answers everything but the client's REQUESTs after the first ACK.
  let acks = 0;
  const { clock, serverStack, srv, client, events, dhcp } = await setup({
    pool: ['10.0.0.44'],
    leaseTime: 1000,
    answer: (m) => m.messageType !== DHCPREQUEST || acks++ < 2,
  });
  await runFor(clock, 100);
  assert.is(dhcp.state, 'bound');
  // T1 = 500 s: RENEWING, a REQUEST with ciaddr to the server itself; it is ACKed.
  await runFor(clock, 500_000);
  const renew = srv.seen[2]!;
  assert.is(renew.type, DHCPREQUEST);
  assert.is(renew.message.ciaddr, 0x0a00002c);
  assert.is(renew.message.serverId, null);
  assert.is(renew.message.broadcast, false);
  assert.ok(Math.abs(renew.at - 500_004) < 5, `renewal at ${renew.at}`);
  assert.ok(events.some(([e]) => e === 'renewed'));
  assert.is(dhcp.state, 'bound');
  const renewedAt = (events.find(([e]) => e === 'renewed')![1] as DhcpLease).obtainedAt;
  // Now the server is silent: T1 again (500 s later), retries at least 60 s apart, then T2
  // at 875 s (broadcast), then expiry at 1000 s.
  await runFor(clock, 1_001_000);
  const later = srv.seen.slice(3);
  assert.ok(later.length >= 3);
  const t2 = renewedAt + 875_000;
  const renewing = later.filter((s) => s.at < t2);
  const rebinding = later.filter((s) => s.at >= t2);
  assert.ok(renewing.length >= 2 && rebinding.length >= 1, `${renewing.length} renewing, ${rebinding.length} rebinding`);
  for (let i = 1; i < renewing.length; i++) assert.ok(renewing[i]!.at - renewing[i - 1]!.at >= 60_000 - 1);
  assert.is(renewing[0]!.to, '10.0.0.44');
  assert.ok(events.some(([e]) => e === 'rebinding'));
  assert.ok(events.some(([e]) => e === 'expired'));
  const expired = events.findIndex(([e]) => e === 'expired');
  assert.ok(expired > 0);
  // After expiry: INIT again, from 0.0.0.0.
  assert.ok(['selecting', 'requesting', 'bound'].includes(dhcp.state), dhcp.state);
  assert.ok(srv.seen.some((s) => s.type === DHCPDISCOVER && s.at > renewedAt + 1_000_000 - 1));
  await close(client, serverStack);
});

test('a NAK on renewal drops the address and starts over from INIT', async () => {
  let requests = 0;
  const { clock, serverStack, srv, client, events, dhcp } = await setup({
    pool: ['10.0.0.45', '10.0.0.46'],
    leaseTime: 100,
    nak: (m) => m.messageType === DHCPREQUEST && ++requests === 2,
  });
  await runFor(clock, 100);
  assert.is(client.address, '10.0.0.45');
  await runFor(clock, 50_100);
  assert.ok(events.some(([e]) => e === 'nak'));
  assert.is(dhcp.state, 'bound');
  assert.is(client.address, '10.0.0.46');
  assert.equal(srv.types().slice(0, 5), [DHCPDISCOVER, DHCPREQUEST, DHCPREQUEST, DHCPDISCOVER, DHCPREQUEST]);
  await close(client, serverStack);
});

test('a server that never answers: DISCOVERs with RFC 2131 backoff (4, 8, 16, 32, 64, 64 s +/- 1 s), a warning, no throw', async () => {
  const { clock, serverStack, srv, client, events, dhcp } = await setup({ pool: ['10.0.0.47'], answer: () => false });
  await runFor(clock, 300_000);
  assert.is(dhcp.state, 'selecting');
  const times = srv.seen.map((s) => s.at);
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  const nominal = [4000, 8000, 16000, 32000, 64000, 64000];
  for (let i = 0; i < nominal.length; i++) assert.ok(Math.abs(gaps[i]! - nominal[i]!) <= 1000, `gap ${i}: ${gaps[i]} vs ${nominal[i]}`);
  const warnings = events.filter(([e]) => e === 'warning');
  assert.is(warnings.length, 1);
  assert.match(String(warnings[0]![1]), /no DHCPOFFER/);
  // secs counts from the first DISCOVER (RFC 2131 2).
  assert.ok(srv.seen.at(-1)!.message.secs >= 100);
  assert.is(client.address, '0.0.0.0');
  await close(client, serverStack);
});

test('garbage, replies to another xid or MAC, and cut-short OFFERs are ignored: no throw, still retrying, then bound', async () => {
  let junk: ((m: import('../../src/dhcp/dhcp-message.ts').DhcpMessage) => void) | null = null;
  const { clock, serverStack, srv, client, dhcp } = await setup({
    pool: ['10.0.0.49'],
    answer: (m, seen) => {
      junk?.(m);
      return seen.length > 2;
    },
  });
  const noise = serverStack.createSocket('udp4');
  noise.bind(0);
  noise.setBroadcast(true);
  const { emitDhcp, emptyDhcpMessage, DHCPOFFER } = await import('../../src/dhcp/dhcp-message.ts');
  junk = (m) => {
    const send = (b: Buffer): void => noise.send(b, 68, '255.255.255.255');
    send(Buffer.from('not a DHCP message at all'));
    const offer = emptyDhcpMessage(2, m.xid, Buffer.from(m.chaddr));
    offer.messageType = DHCPOFFER;
    offer.yiaddr = 0x0a000063;
    offer.serverId = 0x0a000001;
    const buf = Buffer.alloc(600);
    emitDhcp(offer, buf);
    // Type (3 bytes) and server id (6) after the cookie, then END at 249: cut before END, and
    // in the middle of the server id.
    send(buf.subarray(0, 249));
    send(buf.subarray(0, 246));
    send(Buffer.concat([buf.subarray(0, 240), Buffer.from([53, 9, 2])])); // an option longer than the message
    const other = emptyDhcpMessage(2, (m.xid + 1) >>> 0, Buffer.from(m.chaddr));
    other.messageType = DHCPOFFER;
    other.yiaddr = 0x0a000064;
    other.serverId = 0x0a000001;
    const k = emitDhcp(other, buf);
    send(Buffer.from(buf.subarray(0, k))); // another exchange's
  };
  await runFor(clock, 60_000);
  assert.is(dhcp.state, 'bound');
  assert.is(client.address, '10.0.0.49');
  assert.is(srv.seen.filter((s) => s.type === DHCPDISCOVER).length, 3);
  const drops = Object.keys(client.counters().ethernet!.drops);
  assert.not.ok(drops.some((d) => d.startsWith('internal-error')), drops.join(','));
  await close(client, serverStack);
});

test('release(): DHCPRELEASE unicast to the server, the address dropped, the client stopped', async () => {
  const { clock, serverStack, srv, client, dhcp } = await setup({ pool: ['10.0.0.51'] });
  await runFor(clock, 100);
  assert.is(client.address, '10.0.0.51');
  dhcp.release();
  await runFor(clock, 100);
  const release = srv.seen.at(-1)!;
  assert.is(release.type, DHCPRELEASE);
  assert.is(release.message.ciaddr, 0x0a000033);
  assert.is(release.message.serverId, 0x0a000001);
  assert.is(client.address, '0.0.0.0');
  assert.is(dhcp.state, 'stopped');
  assert.is(clock.nextTimerAt(), null);
  await close(client, serverStack);
});

test('the same seed gives the same exchange; another seed other xids and jitter', async () => {
  const times = async (seed: number) => {
    const { clock, serverStack, srv, client } = await setup({ pool: ['10.0.0.52'], answer: () => false }, { arpProbe: false }, seed);
    await runFor(clock, 200_000);
    const out = srv.seen.map((s) => `${s.at}:${s.message.xid}`);
    await close(client, serverStack);
    return out;
  };
  const a = await times(11);
  assert.equal(await times(11), a);
  assert.not.equal(await times(12), a);
});

test('INIT-REBOOT asks for the remembered address first', async () => {
  const { clock, serverStack, srv, client, dhcp } = await setup({ pool: ['10.0.0.48'] }, { arpProbe: false, requestAddress: '10.0.0.99' });
  await runFor(clock, 100);
  assert.equal(srv.types(), [DHCPREQUEST]);
  assert.is(srv.seen[0]!.message.requestedIp, 0x0a000063);
  assert.is(srv.seen[0]!.message.serverId, null);
  assert.is(dhcp.state, 'bound');
  assert.is(client.address, '10.0.0.99');
  await close(client, serverStack);
});

test('INIT-REBOOT NAKed: INIT and a new address', async () => {
  const { clock, serverStack, srv, client, dhcp } = await setup(
    { pool: ['10.0.0.48'], nak: (m) => m.requestedIp === 0x0a000063 },
    { arpProbe: false, requestAddress: '10.0.0.99' },
  );
  await runFor(clock, 100);
  assert.equal(srv.types(), [DHCPREQUEST, DHCPDISCOVER, DHCPREQUEST]);
  assert.is(dhcp.state, 'bound');
  assert.is(client.address, '10.0.0.48');
  await close(client, serverStack);
});

test('createStack: dhcp and ip are exclusive', async () => {
  const clock = new VirtualClock();
  const [l] = createLinkPair(clock);
  const err = await createStack({ link: l, clock, dhcp: true, ip: '10.0.0.2/24' }).then(
    () => null,
    (e: Error) => e,
  );
  assert.match(String(err?.message), /not both/);
});

test.run();
