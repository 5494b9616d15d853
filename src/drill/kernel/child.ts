// The process that runs one script against the kernel, started by run-in-namespace.ts inside
// the namespace it made: `child.ts FILE OPTIONS_JSON`. It prints the verdict as one JSON line
// and exits, ending any call still blocked on a thread.

import { execFileSync } from 'node:child_process';
import { runDrillFile, runDrillSource, type DrillOptions } from '../runner.ts';
import { KernelTarget } from './kernel-target.ts';

/**
 * A short exchange run first, its verdict ignored: the first pass through the runner and the
 * kernel's paths costs milliseconds (code compiled on first use, the kernel's first socket
 * and route), more than a tolerance's share. It ends with a reset: no TIME-WAIT is left.
 */
const WARM_UP = `--tolerance_usecs=1000000
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
+0 > S. 0:0(0) ack 1 <...>
+0 < . 1:1(0) ack 1 win 257
+0 accept(3, ..., ...) = 4
+0 < P. 1:1001(1000) ack 1 win 257
+0 > . 1:1(0) ack 1001
+0 read(4, ..., 1000) = 1000
+0 write(4, ..., 1000) = 1000
+0 > P. 1:1001(1000) ack 1001
+0 < R. 1001:1001(0) ack 1001 win 0
+0 close(4) = 0
+0 close(3) = 0
`;

const [file, json] = process.argv.slice(2);
const { verbose, ...options } = JSON.parse(json ?? '{}') as Omit<DrillOptions, 'verbose'> & { verbose?: boolean };
const made: KernelTarget[] = [];
const kernel = (): KernelTarget => {
  const t = new KernelTarget();
  made.push(t);
  return t;
};
try {
  await runDrillSource(WARM_UP, '.', { target: () => new KernelTarget() });
  // Nothing of the warm-up's connection may shape the script's (cached RTT, cwnd).
  execFileSync('ip', ['tcp_metrics', 'flush', 'all'], { stdio: 'ignore' });
  const result = await runDrillFile(file!, {
    ...options,
    verbose: verbose ? (line) => process.stderr.write(line + '\n') : undefined,
    target: kernel,
  });
  process.stdout.write(JSON.stringify({ ...result, refused: made[0]?.refused ?? [] }) + '\n');
} catch (err) {
  process.stdout.write(JSON.stringify({ verdict: 'FAIL', line: 0, text: '', message: `runner error: ${(err as Error).stack ?? err}` }) + '\n');
}
process.exit(0);
