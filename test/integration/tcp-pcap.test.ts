// Done-when check: a capture (--pcap) of the stack's TCP traffic with the kernel (echo,
// bulk both ways, a refused port, a reset mid-stream, ping) holds no malformed frame and no
// bad IP or TCP checksum according to tshark.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from '../helpers/netns.ts';
import { canUseTap } from '../helpers/root.ts';
import { withStack, withTempDir } from '../helpers/tcp-ns.ts';

const it = canUseTap ? test : test.skip;

const TSHARK_CHECKS = ['-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE'];
const PROBLEMS = '_ws.malformed or _ws.expert.severity == error or tcp.checksum.status == "Bad" or ip.checksum.status == "Bad"';

// Offloads off: the stack computes every checksum itself and the kernel's frames are complete.
// Offloads on: frames may be super-frames and checksums partial, completed in the capture's copy
// from the stack's pseudo-header sum.
for (const offload of ['off', 'on']) it(`tshark finds no malformed frame or bad checksum in a capture of TCP traffic (offload ${offload})`, async () => {
  await withTempDir(async (dir) => {
    const capture = path.join(dir, 'stack.pcap');
    await withStack(
      async (ns) => {
        const body = path.join(dir, 'body');
        await writeFile(body, randomBytes(2_000_000));
        const steps: [string, string[]][] = [
          ['nc', ['-N', '-w', '10', '10.0.0.2', '7']],
          ['curl', ['-sS', '--max-time', '30', '-o', '/dev/null', 'http://10.0.0.2/bytes/3000000']],
          ['curl', ['-sS', '--max-time', '30', '--data-binary', `@${body}`, 'http://10.0.0.2/sha256']],
          ['curl', ['-sS', '--max-time', '10', 'http://10.0.0.2/']],
          ['sh', ['-c', 'nc -w 10 10.0.0.2 19 </dev/null | head -c 100000 >/dev/null']],
          ['ping', ['-c', '3', '-i', '0.2', '-s', '1400', '10.0.0.2']],
        ];
        for (const [cmd, args] of steps) {
          const r = await ns.exec(cmd, args, 40_000, 'hello\n');
          assert.is(r.code, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
        }
        const refused = await ns.exec('curl', ['-sS', '--connect-timeout', '5', 'http://10.0.0.2:81/'], 15_000);
        assert.is(refused.code, 7);
      },
      ['--pcap', capture, '--offload', offload],
    );
    // The capture is not empty: megabytes of TCP payload both ways (super-frames with offloads).
    const tcp = await run('tshark', ['-r', capture, '-Y', 'tcp', '-T', 'fields', '-e', 'ip.src', '-e', 'tcp.len'], 60_000);
    const payload: Record<string, number> = {};
    for (const line of tcp.stdout.split('\n').filter(Boolean)) {
      const [src, len] = line.split('\t');
      payload[src!] = (payload[src!] ?? 0) + Number(len);
    }
    assert.ok(payload['10.0.0.2']! >= 3_000_000, `payload from the stack: ${JSON.stringify(payload)}`);
    assert.ok(payload['10.0.0.1']! >= 2_000_000, `payload from the kernel: ${JSON.stringify(payload)}`);
    const resets = await run('tshark', ['-r', capture, '-Y', 'tcp.flags.reset == 1 && ip.src == 10.0.0.2'], 60_000);
    assert.ok(resets.stdout.trim().length > 0, 'the stack refused port 81 with a RST');

    const problems = await run('tshark', ['-r', capture, ...TSHARK_CHECKS, '-Y', PROBLEMS], 60_000);
    assert.is(problems.code, 0, problems.stderr);
    assert.is(problems.stdout, '', `problem frames:\n${problems.stdout.slice(0, 4000)}`);
  });
});

test.run();
