// `tapstack fleet` on a TAP in a namespace of the test's, against the Linux kernel:
// 200 devices with static addresses (the kernel reaches a sample: ping 20 of them, HTTP to
// 5, GET /fleet on the first), then 20 devices that each get a lease from dnsmasq. The kernel
// learns only the sampled devices as neighbours (its table is shared by every namespace).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeTap, startDnsmasq } from '../helpers/dnsmasq.ts';
import { run, withNamespace } from '../helpers/netns.ts';
import { canUseTap } from '../helpers/root.ts';

const hasDnsmasq = (await run('sh', ['-c', 'command -v dnsmasq'])).code === 0;
const it = canUseTap ? test : test.skip;
const itDhcp = canUseTap && hasDnsmasq ? test : test.skip;

it('200 static devices on one TAP: a sample answers ping and HTTP; /fleet reports them all', async () => {
  await withNamespace(async (ns) => {
    const fleet = await ns.startStack(['fleet', '--count', '200', '--ip', '10.0.1.1/16', '--services', 'echo,http', '--seed', '1'], 60_000);
    try {
      assert.match(fleet.stdout, /^tapstack up fleet 200 devices dev tap0 first dev-0 10\.0\.1\.1 last dev-199 10\.0\.1\.200 /m);
      // Every tenth device: 20 neighbours for the kernel.
      const sample = Array.from({ length: 20 }, (_, i) => `10.0.1.${1 + i * 10}`);
      const pings = await Promise.all(sample.map((a) => ns.exec('ping', ['-c', '1', '-W', '3', a], 10_000)));
      assert.equal(pings.filter((p) => p.code === 0).length, 20, pings.map((p) => p.stdout).join(''));
      for (const a of sample.slice(0, 5)) {
        const r = await ns.exec('curl', ['-sS', '--max-time', '10', `http://${a}/bytes/100000`, '-o', '/dev/null', '-w', '%{size_download}']);
        assert.is(r.stdout, '100000', `${a}: ${r.stderr}`);
      }
      const status = await ns.exec('curl', ['-sS', '--max-time', '10', 'http://10.0.1.1/fleet?list=1&offset=199&limit=1']);
      const s = JSON.parse(status.stdout) as { devices: number; addressed: number; list: { name: string; ip: string }[]; segment: { floodedIn: number } };
      assert.is(s.devices, 200);
      assert.is(s.addressed, 200);
      assert.equal(s.list.map((d) => [d.name, d.ip]), [['dev-199', '10.0.1.200/16']]);
      process.stdout.write(`  ${fleet.stdout.trim().split('\n')[0]}; rss ${(s as unknown as { process: { rssBytes: number } }).process.rssBytes >> 20} MiB\n`);
    } finally {
      assert.is((await fleet.stop()).code, 0);
    }
  }, 'fleet');
});

itDhcp('20 devices boot with DHCP from dnsmasq; each answers ping on its lease', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tapstack-fleet-'));
  try {
    await withNamespace(async (ns) => {
      await makeTap(ns);
      const dnsmasq = await startDnsmasq(ns, { dir, logDhcp: false });
      try {
        const fleet = await ns.startStack(['fleet', '--count', '20', '--dhcp', '--no-host-config', '--services', 'echo,http', '--dhcp-wait', '60'], 90_000);
        try {
          const status = JSON.parse((await ns.exec('curl', ['-sS', '--max-time', '10', `http://${/first dev-0 (\S+)/.exec(fleet.stdout)![1]}/fleet?list=1`])).stdout) as {
            dhcp: Record<string, number>;
            list: { ip: string }[];
          };
          assert.is(status.dhcp.bound, 20);
          const addresses = status.list.map((d) => d.ip.split('/')[0]!);
          assert.is(new Set(addresses).size, 20);
          const pings = await Promise.all(addresses.map((a) => ns.exec('ping', ['-c', '1', '-W', '3', a], 10_000)));
          assert.equal(pings.filter((p) => p.code === 0).length, 20);
          process.stdout.write(`  ${fleet.stdout.trim().split('\n')[0]}\n`);
        } finally {
          assert.is((await fleet.stop()).code, 0);
        }
      } finally {
        dnsmasq.stop();
      }
    }, 'fleetdhcp');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
