// Offloads on a real TAP in a private namespace, on and off: the kernel hands over UDP with
// partial checksums (TUN_F_CSUM), large pings still work, and the pcap capture holds only
// frames whose checksums tshark finds good.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run, withNamespace } from '../helpers/netns.ts';
import { canUseTap } from '../helpers/root.ts';

const it = canUseTap ? test : test.skip;

for (const mode of ['on', 'off'] as const) {
  it(`--offload ${mode}: pings, UDP from the kernel, and a pcap with valid checksums`, async () => {
    const pcap = path.join(os.tmpdir(), `tapstack-offload-${mode}-${process.pid}.pcap`);
    try {
      await withNamespace(async (ns) => {
        const stack = await ns.startStack(['--tap', 'tap0', '--offload', mode, '--pcap', pcap, '--stats-on-exit']);
        assert.match(stack.stdout, new RegExp(`offload ${mode}\\n`));
        const ping = await ns.exec('ping', ['-c', '5', '-i', '0.01', '-W', '1', '-s', '1472', '-M', 'do', '10.0.0.2'], 20_000);
        assert.is(ping.code, 0, ping.stdout + ping.stderr);
        assert.match(ping.stdout, / 0% packet loss/);
        // A UDP datagram from the kernel: with TUN_F_CSUM its checksum arrives partial.
        await ns.exec('nc', ['-u', '-w', '1', '10.0.0.2', '9'], 10_000, 'offload probe\n');
        const exit = await stack.stop();
        assert.is(exit.code, 0);
        const stats = JSON.parse(stack.stdout.trim().split('\n').pop()!) as Record<string, { offload?: Record<string, number> }>;
        const partial = stats.tap?.offload?.rxPartialChecksum ?? -1;
        if (mode === 'on') assert.ok(partial >= 1, `partial-checksum frames: ${partial}`);
        else assert.is(partial, 0);
      }, 'off');
      const t = await run('tshark', ['-r', pcap, '-o', 'udp.check_checksum:TRUE', '-T', 'fields', '-e', '_ws.col.Protocol', '-e', 'udp.checksum.status', '-e', 'ip.checksum.status', '-e', 'icmp.checksum.status']);
      assert.is(t.code, 0, t.stderr);
      const lines = t.stdout.trim().split('\n');
      const udp = lines.filter((l) => l.split('\t')[0] === 'UDP');
      assert.is(udp.length, 1, t.stdout);
      assert.is(udp[0]!.split('\t')[1], '1', `UDP checksum status (1 = good): ${udp[0]}`);
      const icmp = lines.filter((l) => l.split('\t')[0] === 'ICMP');
      assert.ok(icmp.length >= 10, t.stdout);
      for (const l of icmp) assert.is(l.split('\t')[3], '1', l);
    } finally {
      fs.rmSync(pcap, { force: true });
    }
  });
}

test.run();
