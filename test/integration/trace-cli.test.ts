// `tapstack --trace` in a private namespace (root): the kernel pings the stack and opens a
// TCP connection to its echo service; the trace, as JSON lines in a file, starts with the
// meta record and shows the SYN in and the way to ESTABLISHED; the text trace on stdout
// keeps the startup line and the --stats-on-exit counters recognisable (the last line).
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { TraceRecord } from '../../src/index.ts';
import { canUseTap } from '../helpers/root.ts';
import type { Namespace, StackProcess } from '../helpers/netns.ts';
import { withStack, withTempDir } from '../helpers/tcp-ns.ts';

const it = canUseTap ? test : test.skip;

/** The kernel, as a client: one line to the echo service (port 7) and its echo back. */
const ECHO_CLIENT = `
const s = require('node:net').connect(7, '10.0.0.2');
let got = '';
s.setEncoding('utf8');
s.on('data', (d) => { got += d; if (got.includes('\\n')) s.end(); });
s.on('close', () => { console.log('ECHO ' + got.trim()); });
s.on('error', (e) => { console.log('ERROR ' + e.message); process.exit(1); });
s.write('hello trace\\n');
setTimeout(() => process.exit(2), 10000);
`;

async function talk(ns: Namespace): Promise<void> {
  const ping = await ns.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', '10.0.0.2'], 15_000);
  assert.match(ping.stdout, / 0% packet loss/, ping.stdout + ping.stderr);
  const echo = await ns.exec(process.execPath, ['-e', ECHO_CLIENT], 15_000);
  assert.is(echo.stdout.trim(), 'ECHO hello trace', echo.stdout + echo.stderr);
}

it('--trace FILTER --trace-format json --trace-file: the records of a real connection', async () => {
  await withTempDir(async (dir) => {
    const file = path.join(dir, 'trace.jsonl');
    await withStack(talk, ['--trace', 'tcp port 7', '--trace-format', 'json', '--trace-file', file]);
    const records = (await readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TraceRecord);
    assert.is(records[0]!.type, 'meta');
    assert.ok(records[0]!.type === 'meta' && records[0]!.address === '10.0.0.2/24');
    const frames = records.filter((r): r is Extract<TraceRecord, { type: 'frame' }> => r.type === 'frame');
    // The filter kept TCP on port 7 only: no ICMP echo, no ARP.
    assert.ok(frames.length > 4 && frames.every((f) => f.proto === 'tcp' && (f.tcp!.sport === 7 || f.tcp!.dport === 7)), JSON.stringify(frames.slice(0, 3)));
    assert.ok(frames.some((f) => f.dir === 'in' && f.tcp!.flags === 'S' && f.tcp!.rseq === 0));
    assert.ok(frames.some((f) => f.dir === 'out' && f.tcp!.flags === 'S.' && f.tcp!.reason === 'syn'));
    assert.ok(frames.some((f) => f.dir === 'out' && f.tcp!.len === 'hello trace\n'.length), 'the echo went back');
    const states = records.filter((r) => r.type === 'state').map((r) => (r.type === 'state' ? `${r.from}>${r.to}` : ''));
    assert.ok(states.includes('CLOSED>SYN-RECEIVED') && states.includes('SYN-RECEIVED>ESTABLISHED'), states.join(' '));
  });
});

it('--trace on stdout: text lines, the startup line and the counters still recognisable', async () => {
  let process_: StackProcess | null = null;
  await withStack(
    async (ns, stack) => {
      process_ = stack;
      await talk(ns);
    },
    ['--trace', '--stats-on-exit'],
  );
  const stdout = process_!.stdout;
  const lines = stdout.trim().split('\n');
  assert.ok(lines.some((l) => l.startsWith('tapstack up dev tap0 ')), stdout);
  const counters = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
  assert.ok('ethernet' in counters && 'tcp' in counters);
  assert.ok(lines.some((l) => /^\s+[\d.]+  in 10\.0\.0\.1 > 10\.0\.0\.2: ICMP echo request/.test(l)), stdout);
  assert.ok(lines.some((l) => /^\s+[\d.]+  in 10\.0\.0\.1\.\d+ > 10\.0\.0\.2\.7: Flags \[S\], seq 0, win \d+, options \[mss 1460/.test(l)), stdout);
  assert.ok(lines.some((l) => /\* 10\.0\.0\.2:7>10\.0\.0\.1:\d+ SYN-RECEIVED -> ESTABLISHED: ACK of our SYN/.test(l)), stdout);
  assert.ok(!stdout.includes('\x1b['), 'no colour in a pipe');
});

test.run();
