// The CLI on a TAP in a private namespace, pinged and ARPed by the kernel's own tools.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canUseTap } from '../helpers/root.ts';
import { run, withNamespace } from '../helpers/netns.ts';

const it = canUseTap ? test : test.skip;

it('ping -c 20 has 0% loss and the kernel learns our MAC', async () => {
  await withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0']);
    const mac = /mac ([0-9a-f:]{17})/.exec(stack.stdout)![1]!;
    const r = await ns.exec('ping', ['-c', '20', '-i', '0.01', '-W', '1', '10.0.0.2'], 30_000);
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /20 packets transmitted, 20 received, 0% packet loss/);
    const neigh = await ns.exec('ip', ['neigh', 'show', '10.0.0.2', 'dev', 'tap0']);
    assert.ok(neigh.stdout.includes(mac), neigh.stdout);
    assert.match(neigh.stdout, /REACHABLE|STALE|DELAY|PROBE/);
    const exit = await stack.stop();
    assert.is(exit.code, 0);
  });
});

it('a 1500-byte ping with don\'t fragment (ping -s 1472 -M do) is answered whole', async () => {
  await withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0']);
    const r = await ns.exec('ping', ['-c', '5', '-i', '0.05', '-W', '1', '-s', '1472', '-M', 'do', '10.0.0.2'], 30_000);
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1480 bytes from 10\.0\.0\.2/);
    assert.match(r.stdout, / 0% packet loss/);
    // One byte more does not fit the 1500-byte MTU: the kernel refuses it locally.
    const big = await ns.exec('ping', ['-c', '1', '-W', '1', '-s', '1473', '-M', 'do', '10.0.0.2'], 10_000);
    assert.is.not(big.code, 0);
    assert.is((await stack.stop()).code, 0);
  });
});

for (const offload of ['off', 'on']) {
  it(`--mtu 20000 (offload ${offload}): a 20000-byte ping with don't fragment is answered whole`, async () => {
    await withNamespace(async (ns) => {
      const stack = await ns.startStack(['--tap', 'tap0', '--mtu', '20000', '--offload', offload]);
      const r = await ns.exec('ping', ['-c', '3', '-i', '0.05', '-W', '1', '-s', '19972', '-M', 'do', '10.0.0.2'], 30_000);
      assert.is(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /19980 bytes from 10\.0\.0\.2/);
      assert.is((await stack.stop()).code, 0);
    });
  });
}

it('pings larger than the MTU are reassembled and answered in fragments (-s 4000, -s 65507)', async () => {
  await withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0']);
    for (const size of ['4000', '65507']) {
      const r = await ns.exec('ping', ['-c', '3', '-i', '0.1', '-W', '2', '-s', size, '10.0.0.2'], 30_000);
      assert.is(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`${Number(size) + 8} bytes from 10\\.0\\.0\\.2`));
      assert.match(r.stdout, / 0% packet loss/);
    }
    assert.is((await stack.stop()).code, 0);
  });
});

it('ping -f -c 10000 loses nothing', async () => {
  await withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0', '--stats-on-exit']);
    const r = await ns.exec('ping', ['-f', '-c', '10000', '-w', '60', '10.0.0.2'], 90_000);
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /10000 packets transmitted, 10000 received, 0% packet loss/);
    assert.is((await stack.stop()).code, 0);
    const stats = JSON.parse(stack.stdout.trim().split('\n').pop()!) as Record<string, { rx: number; tx: number }>;
    assert.ok(stats.icmp!.tx >= 10000, JSON.stringify(stats));
  });
});

it('arping -c 3 is answered with our MAC', async () => {
  await withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0', '--mac', '02:12:34:56:78:9a']);
    const r = await ns.exec('arping', ['-c', '3', '-w', '10', '-I', 'tap0', '10.0.0.2'], 20_000);
    assert.is(r.code, 0, r.stdout + r.stderr);
    const answers = r.stdout.match(/from 02:12:34:56:78:9a \(10\.0\.0\.2\)/g) ?? [];
    assert.is(answers.length, 3, r.stdout);
    assert.is((await stack.stop()).code, 0);
  });
});

it('--pcap output is read by tshark: the ICMP frames are there and nothing is malformed', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tapstack-it-'));
  try {
    const file = path.join(dir, 'capture.pcap');
    let received = -1;
    let counters = { icmp: { rx: -1, tx: -1 } };
    await withNamespace(async (ns) => {
      const stack = await ns.startStack(['--tap', 'tap0', '--pcap', file, '--stats-on-exit']);
      const r = await ns.exec('ping', ['-c', '10', '-i', '0.01', '-W', '1', '-s', '1000', '10.0.0.2'], 30_000);
      assert.is(r.code, 0, r.stdout + r.stderr);
      received = Number(/(\d+) received/.exec(r.stdout)?.[1] ?? -1);
      assert.is((await stack.stop()).code, 0);
      counters = JSON.parse(stack.stdout.trim().split('\n').pop()!) as typeof counters;
    });
    const icmp = await run('tshark', ['-n', '-r', file, '-Y', 'icmp', '-T', 'fields', '-e', 'icmp.type', '-e', 'icmp.seq'], 60_000);
    assert.is(icmp.code, 0, icmp.stderr);
    const lines = icmp.stdout.trim().split('\n');
    // Every echo the stack took in and sent out is in the capture, and ping saw every reply
    // (exact counts from the stack's own counters: a loaded machine may delay a ping past -W).
    assert.ok(received >= 1, 'ping got replies');
    assert.is(lines.filter((l) => l.startsWith('8\t')).length, counters.icmp.rx, icmp.stdout);
    assert.is(lines.filter((l) => l.startsWith('0\t')).length, counters.icmp.tx, icmp.stdout);
    assert.ok(counters.icmp.tx >= received, icmp.stdout);
    const arp = await run('tshark', ['-n', '-r', file, '-Y', 'arp.src.proto_ipv4 == 10.0.0.2'], 60_000);
    assert.ok(arp.stdout.trim().split('\n').length >= 2, 'our gratuitous ARP and a reply'); // announce + answer
    const bad = await run('tshark', ['-n', '-r', file, '-Y', '_ws.malformed or _ws.expert.severity == error'], 60_000);
    assert.is(bad.code, 0, bad.stderr);
    assert.is(bad.stdout.trim(), '', bad.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
