// UDP against the kernel's own tools, in a private namespace: nc -u, Node's dgram (the kernel's
// UDP) with datagrams the kernel fragments on the way in and the stack on the way out, port
// unreachable turned into ECONNREFUSED, and a long run of sequential round trips.
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Namespace, ROOT, type StackProcess, withNamespace } from '../helpers/netns.ts';
import { canUseTap } from '../helpers/root.ts';

const it = canUseTap ? test : test.skip;
const LOADER = `file://${ROOT}/node_modules/tsx/dist/loader.mjs`;
const CLIENT = path.join(ROOT, 'test/clients/udp-echo-client.ts');

interface EchoResult {
  sent: number;
  received: number;
  lost: number;
  corrupted: number;
  seconds: number;
  roundTripsPerSecond: number;
}

async function client(ns: Namespace, args: string[], timeoutMs: number): Promise<string> {
  const r = await ns.exec(process.execPath, ['--import', LOADER, CLIENT, ...args], timeoutMs);
  assert.is(r.code, 0, r.stderr);
  return r.stdout.trim();
}

async function echoRun(ns: Namespace, size: number, count: number, seconds: number): Promise<EchoResult> {
  const out = await client(ns, ['echo', '10.0.0.2', '7', String(size), String(count), String(seconds)], (seconds + 15) * 1000);
  return JSON.parse(out) as EchoResult;
}

/** Stops the stack and returns its counters (printed by --stats-on-exit). */
async function stopWithStats(stack: StackProcess): Promise<Record<string, { rx: number; tx: number; drops: Record<string, number> }>> {
  const exit = await stack.stop();
  assert.is(exit.code, 0, stack.stderr);
  const line = stack.stdout.trim().split('\n').pop()!;
  return JSON.parse(line);
}

it('nc -u gets its line echoed on port 7; port 9 discards', async () => {
  await withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0']);
    assert.match(stack.stdout, /services [a-z,]*echo/);
    const r = await ns.exec('nc', ['-u', '-w', '1', '10.0.0.2', '7'], 10_000, 'hello over udp\n');
    assert.is(r.stdout, 'hello over udp\n', r.stderr);
    const d = await ns.exec('nc', ['-u', '-w', '1', '10.0.0.2', '9'], 10_000, 'into the void\n');
    assert.is(d.stdout, '');
    assert.is((await stack.stop()).code, 0);
  }, 'udp');
});

it('8,000 and 60,000-byte datagrams from a host socket come back intact', async () => {
  await withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0', '--stats-on-exit']);
    for (const size of [8000, 60000]) {
      const r = await echoRun(ns, size, 20, 20);
      assert.is(r.sent, 20, JSON.stringify(r));
      assert.is(r.received, 20, JSON.stringify(r));
      assert.is(r.corrupted, 0);
    }
    const stats = await stopWithStats(stack);
    // 20 x 6 + 20 x 41 fragments came in and were reassembled; none was refused.
    assert.ok(stats.ipv4!.rx >= 20 * 6 + 20 * 41, JSON.stringify(stats.ipv4));
    for (const reason of Object.keys(stats.ipv4!.drops)) assert.not.match(reason, /^frag-/, JSON.stringify(stats.ipv4));
    assert.ok(stats.ipv4!.tx >= 20 * 6 + 20 * 41, 'the echoes left fragmented');
  }, 'udp');
});

it('a closed port answers port unreachable: a connected host socket gets ECONNREFUSED', async () => {
  await withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0', '--stats-on-exit']);
    const code = await client(ns, ['refused', '10.0.0.2', '4444'], 15_000);
    assert.is(code, 'ECONNREFUSED');
    const stats = await stopWithStats(stack);
    assert.is(stats.udp!.drops['udp-port-unreachable'], 1);
    assert.is(stats.icmp!.tx, 1);
  }, 'udp');
});

it('2,000 sequential echo round trips without loss', async () => {
  await withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0']);
    const r = await echoRun(ns, 64, 2000, 60);
    assert.is(r.sent, 2000, JSON.stringify(r));
    assert.is(r.received, 2000, JSON.stringify(r));
    assert.is((await stack.stop()).code, 0);
  }, 'udp');
});

test.run();
