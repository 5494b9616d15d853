// The DNS stub resolver (src/dns/resolver.ts) against a small DNS server on an in-memory
// link, in virtual time: answers, CNAMEs, the cache and its TTLs, retries and ETIMEOUT,
// EBADRESP, ENOTFOUND, ESERVFAIL, ECONNREFUSED, truncation -> TCP, connect by name, and the
// servers of a DHCP lease.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLinkPair } from '../../src/link/memory.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import type { DnsOptions } from '../../src/dns/resolver.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { dhcpServer, dnsServer, type DnsServerOptions, runFor } from '../helpers/net-services.ts';

async function setup(server: DnsServerOptions | null, dns: DnsOptions = { servers: ['10.0.0.1'] }) {
  const clock = new VirtualClock();
  const [ls, lc] = createLinkPair(clock, { latencyMs: 1 });
  const serverStack = await createStack({ link: ls, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1 });
  const srv = server ? dnsServer(serverStack, server) : null;
  const client = await createStack({ link: lc, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 2, dns });
  await runFor(clock, 10);
  return { clock, serverStack, srv, client };
}

/** Runs a lookup to its end in virtual time: [err, address, family]. */
async function lookup(clock: VirtualClock, stack: Stack, name: string, options: object = {}, limitMs = 60_000) {
  let result: [NodeJS.ErrnoException | null, unknown, unknown] | null = null;
  const start = clock.now();
  let took = 0;
  stack.dns.lookup(name, options, (err, address, family) => {
    result = [err, address, family];
    took = clock.now() - start;
  });
  while (result === null && clock.now() - start < limitMs) await runFor(clock, 100);
  return { result: result!, took };
}

const close = async (...stacks: Stack[]): Promise<void> => {
  for (const s of stacks) await s.close();
};

test('lookup: an A answer, all: true, the promise form, and the cache until the TTL ends', async () => {
  const { clock, serverStack, srv, client } = await setup({ zone: { 'broker.test': ['10.0.0.7', '10.0.0.8'] }, ttl: 30 });
  const one = await lookup(clock, client, 'broker.test');
  assert.equal(one.result, [null, '10.0.0.7', 4]);
  const all = await lookup(clock, client, 'Broker.Test.', { all: true });
  assert.equal(all.result[1], [
    { address: '10.0.0.7', family: 4 },
    { address: '10.0.0.8', family: 4 },
  ]);
  // The second came from the cache.
  assert.is(srv!.queries.length, 1);
  assert.is(client.dns.stats.cacheHits, 1);
  // After the 30 s TTL, the server is asked again.
  await runFor(clock, 30_000);
  const p = client.dns.promises.lookup('broker.test');
  await runFor(clock, 100);
  assert.equal(await p, { address: '10.0.0.7', family: 4 });
  assert.is(srv!.queries.length, 2);
  // Literals and localhost need no server; IPv6 only is ENOTFOUND.
  assert.equal((await lookup(clock, client, '10.1.2.3')).result, [null, '10.1.2.3', 4]);
  assert.equal((await lookup(clock, client, 'localhost')).result, [null, '10.0.0.2', 4]);
  assert.is((await lookup(clock, client, 'broker.test', { family: 6 })).result[0]?.code, 'ENOTFOUND');
  assert.is(srv!.queries.length, 2);
  await close(client, serverStack);
});

test('the cache is bounded: the least recently used name goes first', async () => {
  const zone: Record<string, string[]> = {};
  for (let i = 0; i < 5; i++) zone[`h${i}.test`] = [`10.0.1.${i}`];
  const { clock, serverStack, srv, client } = await setup({ zone }, { servers: ['10.0.0.1'], cacheSize: 3 });
  for (let i = 0; i < 5; i++) await lookup(clock, client, `h${i}.test`);
  assert.is(client.dns.cached, 3);
  await lookup(clock, client, 'h4.test');
  assert.is(srv!.queries.length, 5);
  await lookup(clock, client, 'h0.test');
  assert.is(srv!.queries.length, 6);
  await close(client, serverStack);
});

test('NXDOMAIN is cached for the SOA minimum (RFC 2308 5); concurrent lookups of a name share one query', async () => {
  const { clock, serverStack, srv, client } = await setup({ zone: { 'a.test': ['10.0.0.3'] }, soaMinimum: 60 });
  assert.is((await lookup(clock, client, 'gone.test')).result[0]?.code, 'ENOTFOUND');
  assert.is((await lookup(clock, client, 'gone.test')).result[0]?.code, 'ENOTFOUND');
  assert.is(srv!.queries.length, 1);
  await runFor(clock, 60_000);
  assert.is((await lookup(clock, client, 'gone.test')).result[0]?.code, 'ENOTFOUND');
  assert.is(srv!.queries.length, 2);
  const results: unknown[] = [];
  for (let i = 0; i < 3; i++) client.dns.lookup('a.test', {}, (err, address) => results.push(err ?? address));
  await runFor(clock, 100);
  assert.equal(results, ['10.0.0.3', '10.0.0.3', '10.0.0.3']);
  assert.is(srv!.queries.length, 3);
  await close(client, serverStack);
});

test('CNAME chains are followed, with the lowest TTL', async () => {
  const { clock, serverStack, client } = await setup({ zone: { 'real.test': ['10.0.0.9'] }, aliases: { 'alias.test': 'real.test' } });
  assert.equal((await lookup(clock, client, 'alias.test')).result, [null, '10.0.0.9', 4]);
  await close(client, serverStack);
});

test('a silent server: 2 attempts of 5 s each, then ETIMEOUT; two servers are tried in turn', async () => {
  const { clock, serverStack, srv, client } = await setup({ zone: {}, behaviour: () => 'silent' });
  const r = await lookup(clock, client, 'nobody.test');
  assert.is(r.result[0]?.code, 'ETIMEOUT');
  assert.is(r.result[0]?.syscall, 'getaddrinfo');
  assert.is(srv!.queries.length, 2);
  // (The first waited 2 ms for ARP.)
  const gap = srv!.queries[1]!.at - srv!.queries[0]!.at;
  assert.ok(gap >= 4995 && gap <= 5000, `gap ${gap}`);
  assert.ok(r.took >= 10_000 && r.took <= 10_100, `took ${r.took}`);
  await close(client, serverStack);

  // Server 10.0.0.3 does not exist (ARP fails); 10.0.0.1 answers the first time on its turn.
  const two = await setup({ zone: { 'x.test': ['10.0.0.5'] } }, { servers: ['10.0.0.3', '10.0.0.1'], timeoutMs: 2000 });
  const r2 = await lookup(two.clock, two.client, 'x.test');
  assert.equal(r2.result, [null, '10.0.0.5', 4]);
  assert.ok(r2.took >= 2000 && r2.took < 2100, `took ${r2.took}`);
  await close(two.client, two.serverStack);
});

test('a retry after a lost answer succeeds', async () => {
  const { clock, serverStack, srv, client } = await setup({ zone: { 'x.test': ['10.0.0.5'] }, behaviour: (i) => (i === 0 ? 'silent' : 'answer') });
  const r = await lookup(clock, client, 'x.test');
  assert.equal(r.result, [null, '10.0.0.5', 4]);
  assert.is(srv!.queries.length, 2);
  await close(client, serverStack);
});

test('garbage is EBADRESP, NXDOMAIN is ENOTFOUND, SERVFAIL is ESERVFAIL, a closed port ECONNREFUSED', async () => {
  const g = await setup({ zone: {}, behaviour: () => 'garbage' });
  const bad = await lookup(g.clock, g.client, 'x.test');
  assert.is(bad.result[0]?.code, 'EBADRESP');
  // Both attempts were made, each answered at once: no wait for a timeout.
  assert.is(g.srv!.queries.length, 2);
  assert.ok(bad.took < 1000);
  const nx = await lookup(g.clock, g.client, 'x.test');
  assert.is(nx.result[0]?.code, 'EBADRESP');
  await close(g.client, g.serverStack);

  const n = await setup({ zone: {} });
  const nx2 = await lookup(n.clock, n.client, 'missing.test');
  assert.is(nx2.result[0]?.code, 'ENOTFOUND');
  assert.is(nx2.result[0]?.message, 'getaddrinfo ENOTFOUND missing.test');
  assert.is(n.srv!.queries.length, 1);
  await close(n.client, n.serverStack);

  const s = await setup({ zone: {}, behaviour: () => 'servfail' });
  assert.is((await lookup(s.clock, s.client, 'x.test')).result[0]?.code, 'ESERVFAIL');
  await close(s.client, s.serverStack);

  const c = await setup(null);
  const refused = await lookup(c.clock, c.client, 'x.test');
  assert.is(refused.result[0]?.code, 'ECONNREFUSED');
  assert.ok(refused.took < 1000, `took ${refused.took}`);
  await close(c.client, c.serverStack);
});

test('a truncated answer is asked again over TCP', async () => {
  const { clock, serverStack, srv, client } = await setup({ zone: { 'big.test': ['10.0.0.11'] }, tcp: true, behaviour: () => 'truncate' });
  const r = await lookup(clock, client, 'big.test');
  assert.equal(r.result, [null, '10.0.0.11', 4]);
  assert.equal(
    srv!.queries.map((q) => q.transport),
    ['udp', 'tcp'],
  );
  assert.is(client.dns.stats.tcpQueries, 1);
  await close(client, serverStack);
});

test('connect({ host: name }) resolves through the stack resolver and emits lookup', async () => {
  const { clock, serverStack, client } = await setup({ zone: { 'echo.test': ['10.0.0.1'] } });
  const got: string[] = [];
  serverStack.createServer((s) => s.on('data', (d: Buffer) => got.push(d.toString()))).listen(7);
  const lookups: unknown[] = [];
  const sock = client.connect({ host: 'echo.test', port: 7 });
  sock.on('lookup', (err, address, family, host) => lookups.push([err, address, family, host]));
  sock.on('connect', () => sock.write('by name'));
  await runFor(clock, 200);
  assert.equal(lookups, [[null, '10.0.0.1', 4, 'echo.test']]);
  assert.equal(got, ['by name']);
  const failed: string[] = [];
  const bad = client.connect({ host: 'nothing.test', port: 7 });
  bad.on('error', (e: NodeJS.ErrnoException) => failed.push(e.code!));
  await runFor(clock, 200);
  assert.equal(failed, ['ENOTFOUND']);
  sock.destroy();
  await close(client, serverStack);
});

test('the servers come from the DHCP lease (option 6)', async () => {
  const clock = new VirtualClock();
  const [ls, lc] = createLinkPair(clock, { latencyMs: 1 });
  const serverStack = await createStack({ link: ls, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1 });
  dhcpServer(serverStack, { pool: ['10.0.0.50'], dnsServers: ['10.0.0.1'] });
  dnsServer(serverStack, { zone: { 'broker.test': ['10.0.0.1'] } });
  const client = await createStack({ link: lc, clock, dhcp: { arpProbe: false }, mac: '02:00:00:00:00:02', seed: 2 });
  assert.equal(client.dns.servers, []);
  await runFor(clock, 100);
  assert.equal(client.dns.servers, ['10.0.0.1']);
  assert.equal((await lookup(clock, client, 'broker.test')).result, [null, '10.0.0.1', 4]);
  await close(client, serverStack);
});

test.run();
