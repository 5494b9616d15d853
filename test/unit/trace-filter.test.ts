// The trace filter: each primitive, and/or/not and parentheses, tcpdump's juxtaposition,
// events following their connection both ways, and parse errors that say where.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { compileFilter, PROTO_BIT, type Subject, TraceFilterError } from '../../src/trace/filter.js';

const ip = (a: string): number => parseIpv4(a)!;
const IP = PROTO_BIT.ethernet | PROTO_BIT.ip;

function frame(proto: 'tcp' | 'udp' | 'icmp' | 'igmp', src: string, sport: number | null, dst: string, dport: number | null): Subject {
  return { protos: IP | PROTO_BIT[proto], src: ip(src), dst: ip(dst), sport, dport, eitherWay: false };
}
const tcpOut = frame('tcp', '10.0.0.1', 40000, '10.0.0.2', 7);
const tcpIn = frame('tcp', '10.0.0.2', 7, '10.0.0.1', 40000);
const udp = frame('udp', '10.0.0.1', 5000, '10.0.0.2', 9);
const icmp = frame('icmp', '10.0.0.3', null, '10.0.0.1', null);
const igmp = frame('igmp', '10.0.0.1', null, '224.0.0.22', null);
const arp: Subject = { protos: PROTO_BIT.ethernet | PROTO_BIT.arp, src: ip('10.0.0.1'), dst: ip('10.0.0.2'), sport: null, dport: null, eitherWay: false };
/** A connection's event: local 10.0.0.2:7, remote 10.0.0.1:40000. */
const connEvent: Subject = { ...tcpIn, eitherWay: true };
const all = { tcpOut, tcpIn, udp, icmp, igmp, arp };

function matching(filter: string, subjects: Record<string, Subject> = all): string[] {
  const f = compileFilter(filter);
  return Object.entries(subjects)
    .filter(([, s]) => f(s))
    .map(([name]) => name);
}

test('protocols', () => {
  assert.equal(matching('tcp'), ['tcpOut', 'tcpIn']);
  assert.equal(matching('udp'), ['udp']);
  assert.equal(matching('icmp'), ['icmp']);
  assert.equal(matching('igmp'), ['igmp']);
  assert.equal(matching('arp'), ['arp']);
  assert.equal(matching('ip'), ['tcpOut', 'tcpIn', 'udp', 'icmp', 'igmp']);
  assert.equal(matching('TCP'), ['tcpOut', 'tcpIn'], 'case does not matter');
});

test('port, src port, dst port', () => {
  assert.equal(matching('port 7'), ['tcpOut', 'tcpIn']);
  assert.equal(matching('src port 7'), ['tcpIn']);
  assert.equal(matching('dst port 7'), ['tcpOut']);
  assert.equal(matching('port 9'), ['udp']);
  assert.equal(matching('port 1'), []);
});

test('host, src host, dst host, and src/dst with a bare address', () => {
  assert.equal(matching('host 10.0.0.2'), ['tcpOut', 'tcpIn', 'udp', 'arp']);
  assert.equal(matching('src host 10.0.0.2'), ['tcpIn']);
  assert.equal(matching('dst host 10.0.0.2'), ['tcpOut', 'udp', 'arp']);
  assert.equal(matching('src 10.0.0.3'), ['icmp']);
  assert.equal(matching('dst 224.0.0.22'), ['igmp']);
});

test('and, or, not, parentheses, juxtaposition, && || !', () => {
  assert.equal(matching('tcp port 7'), ['tcpOut', 'tcpIn']);
  assert.equal(matching('udp port 7'), []);
  assert.equal(matching('tcp and src port 40000'), ['tcpOut']);
  assert.equal(matching('udp or arp'), ['udp', 'arp']);
  assert.equal(matching('not ip'), ['arp']);
  assert.equal(matching('! tcp && ! arp'), ['udp', 'icmp', 'igmp']);
  assert.equal(matching('icmp || igmp'), ['icmp', 'igmp']);
  assert.equal(matching('not (tcp or udp) and host 10.0.0.1'), ['icmp', 'igmp', 'arp']);
  assert.equal(matching('(tcp or udp) and dst port 9'), ['udp']);
  // 'and' binds tighter than 'or'.
  assert.equal(matching('arp or tcp and src port 7'), ['tcpIn', 'arp']);
});

test("a connection's events match when a frame of it would, either way", () => {
  const events = { connEvent };
  assert.equal(matching('src port 40000', events), ['connEvent']);
  assert.equal(matching('dst port 40000', events), ['connEvent']);
  assert.equal(matching('src host 10.0.0.1 and dst port 7', events), ['connEvent']);
  assert.equal(matching('src host 10.0.0.1 and src port 7', events), []);
  assert.equal(matching('not port 7', events), []);
  assert.equal(matching('udp', events), []);
});

test('parse errors say what was expected and where', () => {
  const cases: [string, RegExp, number][] = [
    ['', /empty filter/, 0],
    ['port', /expected a port number/, 4],
    ['port 70000', /expected a port number/, 5],
    ['port x', /expected a port number/, 5],
    ['host 10.0.0', /expected an IPv4 address/, 5],
    ['src', /expected "host" or "port" after "src"/, 3],
    ['dst foo', /expected "host" or "port" after "dst"/, 4],
    ['tcp and', /expected a primitive/, 7],
    ['(tcp or udp', /expected "\)"/, 11],
    ['tcp)', /unexpected "\)"/, 3],
    ['tcpp', /unknown primitive "tcpp"/, 0],
    ['not', /expected a primitive/, 3],
  ];
  for (const [filter, message, position] of cases) {
    try {
      compileFilter(filter);
      assert.unreachable(`"${filter}" parsed`);
    } catch (err) {
      assert.instance(err, TraceFilterError, filter);
      const e = err as TraceFilterError;
      assert.match(e.message, message, filter);
      assert.ok(e.message.startsWith(`bad trace filter "${filter}"`), e.message);
      assert.is(e.position, position, `${filter}: ${e.message}`);
    }
  }
});

test.run();
