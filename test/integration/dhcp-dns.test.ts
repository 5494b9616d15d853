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
import { type Namespace, run, withNamespace } from '../helpers/netns.ts';
import { execTs, parseResult } from '../helpers/tcp-ns.ts';

const hasDnsmasq = (await run('sh', ['-c', 'command -v dnsmasq'])).code === 0;
const it = canUseTap && hasDnsmasq ? test : test.skip;

/** The TAP with the kernel's end configured, before dnsmasq binds to it. */
async function makeTap(ns: Namespace): Promise<void> {
  for (const args of [
    ['tuntap', 'add', 'dev', 'tap0', 'mode', 'tap'],
    ['addr', 'add', '10.0.0.1/24', 'dev', 'tap0'],
    ['link', 'set', 'tap0', 'up'],
  ]) {
    const r = await ns.exec('ip', args);
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  }
}

/** dnsmasq in the foreground, with no configuration of the machine's: everything on the command line. */
async function startDnsmasq(ns: Namespace, dir: string) {
  const pidFile = path.join(dir, 'dnsmasq.pid');
  const child = ns.spawn('dnsmasq', [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    `--pid-file=${pidFile}`,
    `--dhcp-leasefile=${path.join(dir, 'leases')}`,
    '--user=root',
    '--interface=tap0',
    '--bind-interfaces',
    '--except-interface=lo',
    '--no-resolv',
    '--no-hosts',
    '--no-ping',
    '--dhcp-range=10.0.0.100,10.0.0.150,255.255.255.0,120s',
    '--dhcp-option=option:router,10.0.0.1',
    '--host-record=echo.test,10.0.0.1',
    '--address=/broker.test/10.0.0.1',
    '--log-dhcp',
    '--log-facility=-',
  ]);
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  // Up once it has written its PID file.
  for (let i = 0; i < 100; i++) {
    const pid = await readFile(pidFile, 'utf8').catch(() => '');
    if (pid.trim() !== '') return { pid: Number(pid.trim()), log: () => log, child };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`dnsmasq did not start: ${log}`);
}

it('tapstack --dhcp gets a lease from dnsmasq; a device resolves a name and connects to it by name', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tapstack-dnsmasq-'));
  try {
    await withNamespace(async (ns) => {
      await makeTap(ns);
      const dnsmasq = await startDnsmasq(ns, dir);
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
        // Stopped by its PID (its own, inside the namespace), not by name.
        try {
          process.kill(dnsmasq.pid, 'SIGTERM');
        } catch {
          /* gone */
        }
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
