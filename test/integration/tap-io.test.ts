// The command line with every --tap-io mode other than the default (src/tap/tap.ts, ring.ts),
// on a TAP in a namespace of the test's, against the kernel's own tools: ping (and a flood),
// TCP echo, HTTP, a capture and the counters (offloads: super-frames), then a clean exit on
// SIGTERM (the worker reader woken out of read(2) and joined, the descriptor closed, the
// device gone). The trace (the probe), and a fleet on one TAP with SIGINT, on the worker reader.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withNamespace } from '../helpers/netns.ts';
import { canUseTap } from '../helpers/root.ts';

const it = canUseTap ? test : test.skip;

for (const io of ['busy-poll', 'worker-ring', 'worker-loop', 'worker-yield', 'worker-spin']) {
  it(`--tap-io ${io}: ping, a flood, TCP echo, HTTP, pcap and counters; SIGTERM exits cleanly`, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tapstack-tapio-'));
    try {
      await withNamespace(async (ns) => {
        const pcap = path.join(dir, 'io.pcap');
        const stack = await ns.startStack(['--tap', 'tap0', '--tap-io', io, '--stats-on-exit', '--pcap', pcap]);
        assert.match(stack.stdout, new RegExp(`^tapstack up dev tap0 .* offload on io ${io}$`, 'm'));
        const ping = await ns.exec('ping', ['-c', '5', '-i', '0.05', '-W', '1', '10.0.0.2'], 20_000);
        assert.match(ping.stdout, /5 packets transmitted, 5 received, 0% packet loss/, ping.stdout + ping.stderr);
        const flood = await ns.exec('ping', ['-f', '-c', '2000', '-w', '30', '10.0.0.2'], 40_000);
        assert.match(flood.stdout, /2000 packets transmitted, 2000 received, 0% packet loss/, flood.stdout);
        const input = 'echo through the ring\n'.repeat(10_000);
        const echo = await ns.exec('nc', ['-N', '-w', '10', '10.0.0.2', '7'], 30_000, input);
        assert.ok(echo.stdout === input, `echo of ${input.length} bytes: got ${echo.stdout.length}`);
        const http = await ns.exec('curl', ['-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', 'http://10.0.0.2/bytes/3000000'], 15_000);
        assert.is(http.stdout, '200 3000000', http.stderr);
        const t0 = Date.now();
        const exit = await stack.stop();
        assert.is(exit.code, 0, stack.stderr);
        assert.ok(Date.now() - t0 < 5000, `exit took ${Date.now() - t0} ms`);
        const counters = JSON.parse(stack.stdout.trim().split('\n').pop()!) as { tap: { rx: number; offload: { rxSuperFrames: number; rxBatches: number } }; pcap: { frames: number } };
        assert.ok(counters.tap.rx > 2000, JSON.stringify(counters.tap));
        assert.ok(counters.tap.offload.rxBatches > 0);
        assert.ok(counters.tap.offload.rxSuperFrames > 0, 'no super-frames: offloads off?');
        assert.ok(statSync(pcap).size > 2000 * 98, 'capture too small');
        // The stack created the TAP: closing its descriptor removed it.
        const link = await ns.exec('ip', ['link', 'show', 'tap0']);
        assert.is.not(link.code, 0, link.stdout);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

it('--tap-io worker-loop with --trace (the probe): the frames of a TCP echo in the trace file', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tapstack-tapio-'));
  try {
    await withNamespace(async (ns) => {
      const file = path.join(dir, 'trace.jsonl');
      const stack = await ns.startStack(['--tap', 'tap0', '--tap-io', 'worker-loop', '--trace', 'tcp port 7', '--trace-format', 'json', '--trace-file', file]);
      const echo = await ns.exec('nc', ['-N', '-w', '10', '10.0.0.2', '7'], 20_000, 'hello ring\n');
      assert.is(echo.stdout, 'hello ring\n');
      assert.is((await stack.stop()).code, 0, stack.stderr);
      const frames = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; dir?: string; tcp?: { flags: string; len: number } }).filter((r) => r.type === 'frame');
      assert.ok(frames.some((f) => f.dir === 'in' && f.tcp!.flags === 'S'), 'the SYN in');
      assert.ok(frames.some((f) => f.dir === 'out' && f.tcp!.len === 'hello ring\n'.length), 'the echo out');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('--tap-io worker-spin: a fleet of 20 on one TAP answers ping and HTTP; SIGINT exits cleanly', async () => {
  await withNamespace(async (ns) => {
    const fleet = await ns.startStack(['fleet', '--count', '20', '--ip', '10.0.1.1/16', '--services', 'echo,http', '--tap-io', 'worker-spin'], 60_000);
    const pings = await Promise.all(['10.0.1.1', '10.0.1.7', '10.0.1.20'].map((a) => ns.exec('ping', ['-c', '2', '-i', '0.1', '-W', '3', a], 10_000)));
    assert.equal(pings.map((p) => p.code), [0, 0, 0], pings.map((p) => p.stdout).join(''));
    const r = await ns.exec('curl', ['-sS', '--max-time', '10', 'http://10.0.1.7/bytes/100000', '-o', '/dev/null', '-w', '%{size_download}']);
    assert.is(r.stdout, '100000', r.stderr);
    fleet.child.kill('SIGINT');
    const timer = setTimeout(() => fleet.child.kill('SIGKILL'), 10_000);
    const exit = await fleet.exited;
    clearTimeout(timer);
    assert.is(exit.code, 0, fleet.stderr);
  }, 'tapio');
});

test.run();
