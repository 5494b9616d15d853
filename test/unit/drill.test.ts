// `tapstack drill`: the parser of packetdrill's language (every construct of syntax.md the
// corpus uses, errors with line numbers), the runner against the stack in virtual time
// (scripts that must pass pass, scripts that must fail fail with the right line and
// message: flags, sequence, options, timing, return values), wildcards, relative times and
// the tolerance; the project's own scripts in test/drill/; and the CLI's output and exit.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseAsserts } from '../../src/drill/assert.ts';
import { runDrill } from '../../src/drill/drill-cli.ts';
import { DrillParseError, parseScript, type PacketLine, type SyscallLine } from '../../src/drill/parse.ts';
import { type DrillOptions, type DrillResult, runDrillSource } from '../../src/drill/runner.ts';
import { applyCommand } from '../../src/drill/sysctl.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OWN = path.join(ROOT, 'test/drill');

const run = (source: string, options: DrillOptions = {}): Promise<DrillResult> => runDrillSource(source, OWN, options);

/** A passive open on 8080 with the peer's options given, up to accept(). */
const PASSIVE = `
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
  +.1 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 5>
  +.1 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
`;

function failOf(r: DrillResult): { line: number; message: string } {
  if (r.verdict !== 'FAIL') assert.unreachable(`expected FAIL, got ${JSON.stringify(r)}`);
  return r as { line: number; message: string };
}

// --- Parser -------------------------------------------------------------------------

test('parser: packet lines with flags, ranges, ack, win and option lists', () => {
  const s = parseScript(`+.1 < S. 0:0(0) ack 1 win 32792 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
    0.200 > P. 1:1001(1000) ack 1 <nop,nop,sack 1:2 3:4>
    * > F. 1001:1001(0) ack 1 <...>
    +0 < R 5:5(0) win 0`);
  const [a, b, c, d] = s.events.map((e) => e.action as PacketLine);
  assert.equal(s.events[0]!.time, { kind: 'relative', at: 0.1 });
  assert.is(a!.direction, '<');
  assert.is(a!.flags, 'S.');
  assert.is(a!.ack, 1);
  assert.is(a!.win, 32792);
  assert.equal(a!.options, [{ kind: 'mss', value: 1460 }, { kind: 'sackOK' }, { kind: 'TS', val: 100, ecr: 0 }, { kind: 'nop' }, { kind: 'wscale', value: 7 }]);
  assert.equal(s.events[1]!.time, { kind: 'absolute', at: 0.2 });
  assert.equal([b!.start, b!.end, b!.length], [1, 1001, 1000]);
  assert.equal(b!.options, [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'sack', blocks: [[1, 2], [3, 4]] }]);
  assert.equal(s.events[2]!.time, { kind: 'any' });
  assert.is(c!.options, 'any');
  assert.is(d!.flags, 'R');
});

test('parser: system calls with wildcards, structs, arrays, errnos, blocking end times; ranges; options; commands; code', () => {
  const s = parseScript(`--tolerance_usecs=10000
\`../common/defaults.sh\`
// a comment
/* a block
   comment */
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 connect(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.0.2.1")}, 16) = -1 EINPROGRESS (Operation now in progress)
   +0...0.100 read(4, ..., 2000) = 2000
   +0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0
   +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
   +0 poll([{fd=4, events=POLLIN, revents=POLLIN}], 1, 0) = 1
 +.1~+.2 > . 1:1(0) ack 1
   +0 %{ assert tcpi_snd_cwnd == 10 }%
   +0 \`sysctl -q net.ipv4.tcp_sack=0\`
`);
  assert.is(s.options.get('tolerance_usecs'), '10000');
  assert.is(s.initCommand!.text, '../common/defaults.sh');
  const calls = s.events.filter((e) => e.action.type === 'syscall').map((e) => e.action as SyscallLine);
  assert.is(calls[0]!.args[0]!.kind, 'ellipsis');
  assert.is(calls[1]!.errno, 'EINPROGRESS');
  assert.equal(calls[1]!.result, { kind: 'int', value: -1 });
  assert.is(calls[1]!.args[1]!.kind, 'struct');
  assert.is(calls[2]!.endTime, 0.1);
  assert.equal(calls[4]!.args[2], { kind: 'or', left: { kind: 'word', name: 'O_RDWR' }, right: { kind: 'word', name: 'O_NONBLOCK' } });
  assert.is(calls[5]!.args[0]!.kind, 'array');
  assert.equal(s.events.find((e) => e.action.type === 'packet')!.time, { kind: 'range', relative: true, from: 0.1, to: 0.2 });
  assert.ok(s.events.some((e) => e.action.type === 'code' && e.action.text.includes('tcpi_snd_cwnd')));
  assert.ok(s.events.some((e) => e.action.type === 'command' && e.action.text.includes('tcp_sack=0')));
  // Line numbers survive comments.
  assert.is(s.events[0]!.line, 6);
});

test('parser: errors name the line', () => {
  for (const [source, line, text] of [
    ['0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0 win 100', 2, 'expected ")"'],
    ['\n\n+0 > Q 0:0(0)', 3, 'TCP flags'],
    ['0 read(3, ..., 10)', 1, 'expected "="'],
    ['0 < S 0:0(0) <mss>', 1, 'an MSS'],
    ['+0 `unterminated', 1, 'unterminated'],
  ] as const) {
    try {
      parseScript(source);
      assert.unreachable(`parsed: ${source}`);
    } catch (err) {
      assert.instance(err, DrillParseError);
      assert.is((err as DrillParseError).line, line, source);
      assert.match((err as Error).message, text);
    }
  }
});

test('asserts: comparisons, arithmetic and boolean operators; other Python is unsupported', () => {
  const [a, b, c] = parseAsserts('assert tcpi_snd_cwnd == 10\nassert 2 * tcpi_rto >= 400000 and not tcpi_lost > 0\nassert 0 < tcpi_unacked <= 3, tcpi_unacked');
  const info = { tcpi_snd_cwnd: 10, tcpi_rto: 200000, tcpi_lost: 0, tcpi_unacked: 4 };
  assert.is(a!.evaluate(info), true);
  assert.is(b!.evaluate(info), true);
  assert.is(c!.evaluate(info), false, 'chained as Python chains');
  assert.throws(() => parseAsserts('import os'), /Python statement/);
  assert.throws(() => parseAsserts('assert tcpi_x in [1, 2]'), /Python expression/);
});

test('sysctls: defaults.sh and set_sysctls.py map onto TcpConfig; unknown ones are named', () => {
  const config = {};
  applyCommand('sysctl -q net.ipv4.tcp_rmem="4096 540000 $((15*1024*1024))"\n../x/set_sysctls.py /proc/sys/net/ipv4/tcp_timestamps=0 /proc/sys/net/ipv4/tcp_syn_retries=2', OWN, config);
  assert.equal(config, { receiveBufferSize: 15 * 1024 * 1024, timestamps: false, synRetries: 2 });
  assert.throws(() => applyCommand('sysctl -q net.ipv4.tcp_mtu_probing=1', OWN, {}), /tcp_mtu_probing/);
  assert.throws(() => applyCommand('sysctl -q net.ipv4.tcp_ecn=1', OWN, {}), /tcp_ecn=1/);
  assert.throws(() => applyCommand('rm -rf /', OWN, {}), /shell command: rm -rf/);
});

// --- Runner -------------------------------------------------------------------------

test('runner: a passive open, data, a blocking read and a close pass', async () => {
  const r = await run(`${PASSIVE}
   +0...0.05 read(4, ..., 100) = 10
  +.05 < P. 1:11(10) ack 1 win 257
   +0 > . 1:1(0) ack 11
   +0 close(4) = 0
   +0 > F. 1:1(0) ack 11
`);
  assert.equal(r, { verdict: 'PASS' });
});

test('runner: wrong flags, sequence, ack, options fail at their line with expected and actual', async () => {
  let f = failOf(await run(PASSIVE.replace('> S. 0:0(0) ack 1', '> S 0:0(0) ack 1')));
  assert.is(f.line, 6);
  assert.match(f.message, 'bad outbound TCP flags: expected S, actual S.');
  assert.match(f.message, 'actual:   > S. 0:0(0) ack 1');
  f = failOf(await run(PASSIVE.replace('<mss 1460,nop,wscale 5>', '<mss 1460,nop,wscale 7>')));
  assert.match(f.message, 'bad outbound TCP options');
  assert.match(f.message, 'expected: > S. 0:0(0) ack 1 <mss 1460,nop,wscale 7>');
  f = failOf(await run(`${PASSIVE}\n +0 write(4, ..., 10) = 10\n +0 > P. 2:12(10) ack 1`));
  assert.match(f.message, 'bad outbound TCP sequence number: expected 2, actual 1');
  f = failOf(await run(`${PASSIVE}\n +0 write(4, ..., 10) = 10\n +0 > P. 1:11(10) ack 5`));
  assert.match(f.message, 'bad outbound TCP ack: expected 5, actual 1');
});

test('runner: wildcards: <...> options, ... arguments and * times', async () => {
  const r = await run(`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
  +.1 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
    * > S. 0:0(0) ack 1 <...>
  +.1 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
`);
  assert.equal(r, { verdict: 'PASS' });
});

test('runner: relative times count from the previous event; the tolerance decides timing errors', async () => {
  // The delayed FIN ACK: our ACK of data comes at once; a line expecting it 10 ms later is
  // a timing error with the default 4 ms, and passes with 20 ms of tolerance.
  const late = `${PASSIVE}\n  +.1 < P. 1:11(10) ack 1 win 257\n +.01 > . 1:1(0) ack 11\n`;
  const f = failOf(await run(late));
  assert.is(f.line, 11);
  assert.match(f.message, /timing error: .* at 0\.310s, sent at 0\.300s \(tolerance 4000 us\)/);
  assert.equal(await run(late, { toleranceUsecs: 20_000 }), { verdict: 'PASS' });
  // A script's own --tolerance_usecs wins.
  assert.equal(await run(`--tolerance_usecs=20000\n${late}`), { verdict: 'PASS' });
  // Absolute times mix with relative ones.
  assert.equal(await run(`${PASSIVE}\n0.300 < P. 1:11(10) ack 1 win 257\n0.300 > . 1:1(0) ack 11\n`), { verdict: 'PASS' });
});

test('runner: a missing packet, a wrong return value and a call that blocks too long fail', async () => {
  let f = failOf(await run(`${PASSIVE}\n +0 > P. 1:11(10) ack 1`));
  assert.match(f.message, /no packet was sent by 0\.204s/);
  f = failOf(await run(`${PASSIVE}\n +0 read(4, ..., 10) = 10`));
  assert.match(f.message, 'read() still blocked at 0.204s, expected it to return at once');
  f = failOf(await run(`${PASSIVE}\n +0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n +0 read(4, ..., 10) = 10`));
  assert.match(f.message, 'read() returned -1 EAGAIN, expected 10');
  f = failOf(await run(`${PASSIVE}\n +0...0.05 read(4, ..., 10) = 10\n +.1 < P. 1:11(10) ack 1 win 257`));
  assert.match(f.message, /timing error: read\(\) returned at 0\.300s, expected at 0\.250s/);
});

test('runner: a super-frame line matches the segments sent back to back, unless --strict-segments', async () => {
  const script = `${PASSIVE}\n +0 write(4, ..., 3000) = 3000\n +0 > P. 1:3001(3000) ack 1\n`;
  assert.equal(await run(script), { verdict: 'PASS' });
  const f = failOf(await run(script, { strictSegments: true }));
  assert.match(f.message, 'bad outbound TCP flags: expected P., actual .');
});

test('runner: shell lines configure the stack, before it starts and while it runs', async () => {
  const open = (synAck: string) => `
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
  +.1 < S 0:0(0) win 32792 <mss 1000,sackOK,TS val 7 ecr 0,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 ${synAck}
`;
  // The init command: 15 MiB of receive buffer gives Linux's wscale 8.
  assert.equal(await run(`\`sysctl -q net.ipv4.tcp_rmem="4096 87380 15728640"\`\n${open('<mss 1460,sackOK,TS val 1 ecr 7,nop,wscale 8>')}`), { verdict: 'PASS' });
  // A timed command after the stack started: no timestamps, no window scaling.
  const later = `0 \`sysctl -q net.ipv4.tcp_timestamps=0 net.ipv4.tcp_window_scaling=0\`\n${open('<mss 1460,nop,nop,sackOK>')}`;
  assert.equal(await run(later), { verdict: 'PASS' });
});

test('runner: unsupported constructs are named', async () => {
  const cases: [string, RegExp][] = [
    ['0 socket(..., SOCK_DGRAM, IPPROTO_UDP) = 3', /socket type/],
    ['0 sendto(3, ..., 10, 0, ..., ...) = 10', /system call sendto/],
    ['0 setsockopt(3, SOL_TCP, TCP_CONGESTION, "bbr", 3) = 0', /setsockopt TCP_CONGESTION/],
    ['0 < [ect0] S 0:0(0) win 100', /packet ip-info ect0/],
    ['`sysctl -q net.ipv4.tcp_mtu_probing=1`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3', /sysctl net.ipv4.tcp_mtu_probing/],
    ['--ip_version=ipv6\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3', /option --ip_version=ipv6/],
    ['0 %{ print(tcpi_rto) }%', /Python statement/],
  ];
  for (const [source, construct] of cases) {
    const r = await run(source);
    assert.is(r.verdict, 'UNSUPPORTED', source);
    if (r.verdict === 'UNSUPPORTED') assert.match(r.construct, construct);
  }
});

test('runner: %{ assert }% blocks read socket.info()', async () => {
  assert.equal(await run(`${PASSIVE}\n +0 %{ assert tcpi_state == 1 and tcpi_snd_mss == 1000 and tcpi_ca_state == TCP_CA_Open }%\n`), { verdict: 'PASS' });
  // getsockopt TCP_MAXSEG reads the same MSS.
  assert.equal(await run(`${PASSIVE}\n +0 getsockopt(4, SOL_TCP, TCP_MAXSEG, [1000], [4]) = 0\n`), { verdict: 'PASS' });
  const f = failOf(await run(`${PASSIVE}\n +0 %{ assert tcpi_snd_cwnd == 3 }%\n`));
  assert.match(f.message, 'assert tcpi_snd_cwnd == 3 failed (tcpi_snd_cwnd=10)');
});

test("the project's own scripts in test/drill/ pass", async () => {
  const files = readdirSync(OWN).filter((f) => f.endsWith('.pkt'));
  assert.ok(files.length >= 5);
  const out: string[] = [];
  const code = await runDrill(
    files.map((f) => path.join(OWN, f)),
    { stdout: (t) => out.push(t), stderr: (t) => out.push(t) },
  );
  assert.is(code, 0, out.join(''));
  assert.match(out.join(''), `drill: ${files.length}/${files.length} passed, 0 unsupported`);
});

test('CLI: verdict lines, the summary, exit codes (the kernel target: test/integration/drill-kernel.test.ts)', async () => {
  const out: string[] = [];
  const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t) };
  assert.is(await runDrill(['--target', 'bsd', path.join(OWN, 'fin-close.pkt')], io), 2);
  assert.match(out.join(''), "unknown target 'bsd'");
  assert.is(await runDrill([], io), 2);
  // Through bin/tapstack: the dispatch line in src/cli.ts.
  const p = spawnSync(path.join(ROOT, 'bin/tapstack'), ['drill', '--tolerance-usecs', '4000', path.join(OWN, 'fin-close.pkt'), path.join(OWN, 'rst-closed-port.pkt')], { encoding: 'utf8' });
  assert.is(p.status, 0, p.stderr);
  assert.match(p.stdout, /^PASS .*fin-close\.pkt$/m);
  assert.match(p.stdout, /drill: 2\/2 passed, 0 unsupported\n$/);
});

test.run();
