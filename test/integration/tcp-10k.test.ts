// 10,000 simultaneous connections from the kernel to the stack's echo service: all opened,
// each echoes its own message while all are open, then they are held a few seconds while the
// kernel's socket table is read (10,000 established to the stack), and the stack's resident
// memory is reported at idle and with the 10,000 connections (not asserted: see bench:conn).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canUseTap } from '../helpers/root.ts';
import { withNamespace } from '../helpers/netns.ts';
import { parseResult, tsArgs } from '../helpers/tcp-ns.ts';
import { readFileSync } from 'node:fs';

const it = canUseTap ? test : test.skip;

const CONNECTIONS = 10_000;
const HOLD_MS = 4_000;
const CLIENT_TIMEOUT_S = 150;

function residentMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

it('10,000 simultaneous host connections are held and each echoed', async () => {
  await withNamespace(async (ns) => {
    // The host's side needs 10,000 ports of its own.
    await ns.exec('sysctl', ['-qw', 'net.ipv4.ip_local_port_range=1024 65535']);
    const stack = await ns.startStack(['--tap', 'tap0']);
    const pid = stack.child.pid!;
    const idle = residentMiB(pid);
    const client = ns.spawn('env', [`TCPCLI_TIMEOUT=${CLIENT_TIMEOUT_S}`, process.execPath, ...tsArgs('test/clients/tcpcli.ts', ['conc', '10.0.0.2', '7', String(CONNECTIONS), String(HOLD_MS)])]);
    let out = '';
    let err = '';
    client.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    client.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => client.on('exit', (code) => resolve(code)));
    try {
      const held = await waitFor(() => /^HELD /m.test(out) || client.exitCode !== null, (CLIENT_TIMEOUT_S - 10) * 1000);
      assert.ok(held && /^HELD /m.test(out), `the client never held its connections: ${out} ${err}`);
      const heldResident = residentMiB(pid);
      // The kernel's view: every one of its connections to the echo port is established.
      const ss = await ns.exec('ss', ['-Htn', 'state', 'established', 'dst', '10.0.0.2', 'dport', '=', '7'], 30_000);
      const established = ss.stdout.split('\n').filter((l) => l.trim() !== '').length;
      const code = await exited;
      const r = parseResult(out);
      assert.ok(r, `no RESULT line: ${out} ${err}`);
      assert.is(code, 0, `${out} ${err}`);
      assert.is(r!.opened, String(CONNECTIONS), out);
      assert.is(r!.connect_fail, '0');
      assert.is(r!.echoed, String(CONNECTIONS));
      assert.is(r!.bad, '0');
      assert.is(established, CONNECTIONS);
      process.stdout.write(
        `  tapstack resident memory: ${idle.toFixed(1)} MiB idle, ${heldResident.toFixed(1)} MiB holding ${CONNECTIONS} connections ` +
          `(connect ${r!.connect_secs} s, echo ${r!.echo_secs} s)\n`,
      );
    } finally {
      if (client.exitCode === null && client.pid !== undefined) client.kill('SIGKILL');
      const exit = await stack.stop();
      assert.is(exit.code, 0, stack.stderr);
    }
  }, 't10k');
});

test.run();
