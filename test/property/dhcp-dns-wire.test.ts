// DHCP and DNS wire views (fast-check): parse(emit(x)) gives x back, and random or mutated
// bytes never make a parser throw (they give a message or an error string).
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type DhcpMessage, DHCP_MAX_LENGTH, emitDhcp, emptyDhcpMessage, parseDhcp } from '../../src/dhcp/dhcp-message.ts';
import { CLASS_IN, type DnsMessage, type DnsRecord, emitDns, parseDns, TYPE_A, TYPE_CNAME } from '../../src/dns/dns-message.ts';

/** Records with Object's prototype, as parse builds them (assert.equal compares constructors). */
const plain = <T extends object>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> => fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>;
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const optional = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.option(a, { nil: null });
const text = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-. '), minLength: 0, maxLength: 20 });

const dhcpMessage: fc.Arbitrary<DhcpMessage> = plain({
  op: fc.constantFrom(1, 2),
  hops: fc.integer({ min: 0, max: 255 }),
  xid: u32,
  secs: fc.integer({ min: 0, max: 0xffff }),
  broadcast: fc.boolean(),
  ciaddr: u32,
  yiaddr: u32,
  siaddr: u32,
  giaddr: u32,
  chaddr: fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => Buffer.from(b)),
  messageType: optional(fc.integer({ min: 1, max: 8 })),
  subnetMask: optional(u32),
  routers: fc.array(u32, { maxLength: 3 }),
  dnsServers: fc.array(u32, { maxLength: 3 }),
  leaseTime: optional(u32),
  serverId: optional(u32),
  requestedIp: optional(u32),
  parameterList: fc.array(fc.integer({ min: 1, max: 254 }), { maxLength: 10 }),
  renewalTime: optional(u32),
  rebindingTime: optional(u32),
  clientId: optional(fc.uint8Array({ minLength: 0, maxLength: 16 })),
  hostName: optional(text),
  message: optional(text),
});

test('DHCP: parse(emit(m)) is m', () => {
  const buf = Buffer.alloc(DHCP_MAX_LENGTH + 8);
  fc.assert(
    fc.property(dhcpMessage, fc.integer({ min: 0, max: 8 }), (m, off) => {
      const n = emitDhcp(m, buf, off);
      assert.ok(n >= 300, `emitted ${n}`);
      const back = parseDhcp(buf, off, n);
      assert.type(back, 'object');
      assert.equal(back, m);
    }),
  );
});

test('DHCP: random and mutated bytes never throw', () => {
  const buf = Buffer.alloc(DHCP_MAX_LENGTH);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      const r = parseDhcp(bytes);
      assert.ok(typeof r === 'string' || typeof r === 'object');
    }),
  );
  fc.assert(
    fc.property(dhcpMessage, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat(), (m, flips, cut) => {
      const n = emitDhcp(m, buf);
      const copy = Buffer.from(buf.subarray(0, n));
      // Keep the cookie so that mutations reach the options.
      for (const [at, v] of flips) if (at % n < 236 || at % n >= 240) copy[at % n] = v;
      const r = parseDhcp(copy, 0, Math.max(0, n - (cut % 40)));
      assert.ok(typeof r === 'string' || typeof r === 'object');
    }),
  );
});

test('DHCP: option overload (52) carries options in the file and sname fields (RFC 2132 9.3)', () => {
  const m = emptyDhcpMessage(2, 1, Buffer.from([2, 0, 0, 0, 0, 1]));
  m.messageType = 5;
  const buf = Buffer.alloc(DHCP_MAX_LENGTH);
  const n = emitDhcp(m, buf);
  // Replace END by overload = 3, then END; the file field holds the lease time, sname the router.
  const end = buf.indexOf(255, 240);
  buf.set([52, 1, 3, 255], end);
  buf.set([51, 4, 0, 0, 0x0e, 0x10, 255], 108);
  buf.set([3, 4, 10, 0, 0, 1, 255], 44);
  const back = parseDhcp(buf, 0, n) as DhcpMessage;
  assert.type(back, 'object');
  assert.is(back.leaseTime, 3600);
  assert.equal(back.routers, [0x0a000001]);
  // Without END in the file field, the message is refused.
  buf.fill(0, 108 + 6, 108 + 7);
  assert.is(parseDhcp(buf, 0, n), 'dhcp-no-end');
});

const label = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-'), minLength: 1, maxLength: 12 });
const name = fc.array(label, { minLength: 0, maxLength: 4 }).map((l) => l.join('.'));
const record: fc.Arbitrary<DnsRecord> = fc.oneof(
  plain({ name, type: fc.constant(TYPE_A), class: fc.constant(CLASS_IN), ttl: fc.integer({ min: 0, max: 0x7fffffff }), address: u32 }),
  plain({ name, type: fc.constant(TYPE_CNAME), class: fc.constant(CLASS_IN), ttl: fc.integer({ min: 0, max: 0x7fffffff }), target: name }),
  plain({
    name,
    type: fc.integer({ min: 2, max: 0xffff }).filter((t) => t !== TYPE_CNAME),
    class: fc.integer({ min: 0, max: 0xffff }),
    ttl: fc.integer({ min: 0, max: 0x7fffffff }),
    data: fc.uint8Array({ maxLength: 20 }),
  }),
);
const dnsMessage: fc.Arbitrary<DnsMessage> = plain({
  id: fc.integer({ min: 0, max: 0xffff }),
  response: fc.boolean(),
  opcode: fc.integer({ min: 0, max: 15 }),
  authoritative: fc.boolean(),
  truncated: fc.boolean(),
  recursionDesired: fc.boolean(),
  recursionAvailable: fc.boolean(),
  rcode: fc.integer({ min: 0, max: 15 }),
  questions: fc.array(plain({ name, type: fc.integer({ min: 0, max: 0xffff }), class: fc.integer({ min: 0, max: 0xffff }) }), { maxLength: 2 }),
  answers: fc.array(record, { maxLength: 3 }),
  authorities: fc.array(record, { maxLength: 2 }),
  additionals: fc.array(record, { maxLength: 2 }),
});

test('DNS: parse(emit(m)) is m', () => {
  const buf = Buffer.alloc(4096);
  fc.assert(
    fc.property(dnsMessage, (m) => {
      const n = emitDns(m, buf);
      assert.ok(n >= 12);
      assert.equal(parseDns(buf, 0, n), m);
    }),
  );
});

test('DNS: random and mutated bytes never throw; pointers never loop', () => {
  const buf = Buffer.alloc(4096);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      const r = parseDns(bytes);
      assert.ok(typeof r === 'string' || typeof r === 'object');
    }),
  );
  fc.assert(
    fc.property(dnsMessage, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (m, flips) => {
      const n = emitDns(m, buf);
      const copy = Buffer.from(buf.subarray(0, n));
      for (const [at, v] of flips) copy[at % n] = v;
      const r = parseDns(copy);
      assert.ok(typeof r === 'string' || typeof r === 'object');
    }),
  );
  // A pointer to itself, and two pointing at each other: refused, not followed forever.
  const self = Buffer.from([0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
  assert.is(parseDns(self), 'dns-bad-pointer');
  const pair = Buffer.from([0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 14, 0xc0, 12, 0, 1, 0, 1]);
  assert.is(parseDns(pair), 'dns-bad-pointer');
});

test('DNS: compressed names are followed', () => {
  // Question "a.example", answer name a pointer to it, CNAME target "b" + pointer to "example".
  const q = [1, 0x61, 7, ...Buffer.from('example'), 0];
  const msg = Buffer.from([
    0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0,
    ...q, 0, 1, 0, 1,
    0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, 0x62, 0xc0, 14,
    1, 0x62, 0xc0, 14, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 0, 0, 9,
  ]);
  const m = parseDns(msg);
  assert.type(m, 'object');
  const dm = m as DnsMessage;
  assert.is(dm.answers[0]!.name, 'a.example');
  assert.is(dm.answers[0]!.target, 'b.example');
  assert.is(dm.answers[1]!.name, 'b.example');
  assert.is(dm.answers[1]!.address, 0x0a000009);
});

test.run();
