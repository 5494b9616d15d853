// DHCP and DNS against a real server: dnsmasq, started by the test inside its namespace on
// the TAP's kernel end (10.0.0.1), as DHCP server (a pool, a router, itself as DNS server)
// and DNS server (--host-record). `tapstack --dhcp` prints its lease line and answers ping
// on the leased address; a device on the API gets a lease, resolves a name through the
// lease's server and connects to it by name (an echo server in the namespace).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canUseTap } from '../helpers/root.ts';
import { run, withNamespace } from '../helpers/netns.ts';
import { makeTap, startDnsmasq } from '../helpers/dnsmasq.ts';
import { execTs, parseResult } from '../helpers/tcp-ns.ts';

const hasDnsmasq = (await run('sh', ['-c', 'command -v dnsmasq'])).code === 0;
const it = canUseTap && hasDnsmasq ? test : test.skip;

it('tapstack --dhcp gets a lease from dnsmasq; a device resolves a name and connects to it by name', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tapstack-dnsmasq-'));
  try {
    await withNamespace(async (ns) => {
      await makeTap(ns);
      const dnsmasq = await startDnsmasq(ns, { dir, hosts: { 'echo.test': '10.0.0.1' } });
      const echo = ns.spawn('socat', ['TCP-LISTEN:7777,bind=10.0.0.1,reuseaddr,fork', 'PIPE']);
      try {
        // 1. The command line: the lease line, then ping to the leased address.
        const cli = await ns.startStack(['--tap', 'tap0', '--no-host-config', '--dhcp', '--services', 'echo']);
        assert.match(cli.stdout, /^tapstack up dev tap0 ip dhcp /m);
        await cli.waitFor(/^tapstack lease /m, 30_000);
        const line = /^tapstack lease ip (\S+)\/(\d+) gateway (\S+) dns (\S+) server (\S+) lease (\d+)s$/m.exec(cli.stdout);
        assert.ok(line, cli.stdout);
        const [, address, prefix, gateway, dns, server, lease] = line;
        assert.match(address!, /^10\.0\.0\.(1[0-4]\d|150)$/);
        assert.equal([prefix, gateway, dns, server, lease], ['24', '10.0.0.1', '10.0.0.1', '10.0.0.1', '120']);
        const ping = await ns.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', address!]);
        assert.is(ping.code, 0, ping.stdout + ping.stderr);
        assert.match(await readFile(path.join(dir, 'leases'), 'utf8'), new RegExp(address!.replace(/\./g, '\\.')));
        assert.is((await cli.stop()).code, 0);

        // 2. The API: lease, dns.lookup through the lease's server, connect({ host: name }).
        const r = await execTs(ns, 'test/clients/dhcp-dns-device.ts', ['tap0', 'echo.test', '7777'], 60_000);
        const result = parseResult(r.stdout);
        assert.ok(result && !result.error, `${r.stdout} ${r.stderr}\n${dnsmasq.log()}`);
        assert.match(result.address!, /^10\.0\.0\.\d+\/24$/);
        assert.is(result.dns, '10.0.0.1');
        assert.is(result.lookup, '10.0.0.1');
        assert.is(result.echo, '10.0.0.1:hello_by_name');
        process.stdout.write(`  DORA + RFC 5227 probe with dnsmasq: bound in ${result.bound_ms} ms\n`);
        assert.match(dnsmasq.log(), /DHCPACK\(tap0\)/);
      } finally {
        if (echo.pid !== undefined) process.kill(echo.pid, 'SIGTERM');
        dnsmasq.stop();
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
