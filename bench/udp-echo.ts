// UDP echo round trips per second from the host: tapstack runs its echo service on a TAP in a
// private namespace, and a client on the kernel's UDP in the same namespace does sequential
// round trips, each waiting for its echo. Bounded in count and time. Two clients: Node's dgram
// (test/clients/udp-echo-client.ts) and a small C one (bench/udp-rr.c, built with cc if
// present), since the Node client is itself about as slow as the stack.
//
//   npm run bench:udp [-- COUNT SECONDS SIZES]     (defaults: 100000 10 64,1024,8000)
//
// For scale, both clients also run against socat echoing on the namespace's loopback (the
// kernel on both ends). Needs root (a namespace and a TAP). Prints one line per run and a
// JSON summary.

import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, withNamespace } from '../test/helpers/netns.ts';

const LOADER = `file://${ROOT}/node_modules/tsx/dist/loader.mjs`;
const CLIENT = path.join(ROOT, 'test/clients/udp-echo-client.ts');
const C_SOURCE = path.join(ROOT, 'bench/udp-rr.c');
const C_CLIENT = path.join(os.tmpdir(), `tapstack-udp-rr-${process.pid}`);

/** Builds the C client; null (and a note) when there is no compiler. */
function buildCClient(): string | null {
  try {
    execFileSync('cc', ['-O2', '-o', C_CLIENT, C_SOURCE], { stdio: 'pipe' });
    return C_CLIENT;
  } catch (err) {
    process.stderr.write(`bench:udp: no C client (${(err as Error).message.split('\n')[0]})\n`);
    return null;
  }
}

const [countArg = '100000', secondsArg = '10', sizesArg = '64,1024,8000'] = process.argv.slice(2);
const count = Number(countArg);
const seconds = Number(secondsArg);
const sizes = sizesArg.split(',').map(Number);

interface EchoResult {
  sent: number;
  received: number;
  lost: number;
  corrupted: number;
  seconds: number;
  roundTripsPerSecond: number;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench:udp needs root (network namespace and TAP)\n');
    process.exit(1);
  }
  const results: Record<string, EchoResult> = {};
  const cClient = buildCClient();
  await withNamespace(async (ns) => {
    const measure = async (label: string, client: 'node' | 'c', host: string, size: number): Promise<void> => {
      const args = [host, '7', String(size), String(count), String(seconds)];
      const r =
        client === 'node'
          ? await ns.exec(process.execPath, ['--import', LOADER, CLIENT, 'echo', ...args], (seconds + 20) * 1000)
          : await ns.exec(cClient!, args, (seconds + 20) * 1000);
      label = `${label}, ${client} client`;
      if (r.code !== 0) throw new Error(`client failed: ${r.stderr}`);
      const res = JSON.parse(r.stdout.trim()) as EchoResult;
      results[`${label} ${size}`] = res;
      process.stdout.write(
        `${label} ${String(size).padStart(5)} B: ${Math.round(res.roundTripsPerSecond)} round trips/s ` +
          `(${res.received}/${res.sent} in ${res.seconds.toFixed(2)} s, lost ${res.lost}, corrupted ${res.corrupted})\n`,
      );
    };
    const stack = await ns.startStack(['--tap', 'tap0', '--services', 'echo']);
    // A short warm-up (ARP, JIT) that is not counted.
    await ns.exec(process.execPath, ['--import', LOADER, CLIENT, 'echo', '10.0.0.2', '7', '64', '500', '5'], 20_000);
    const clients: ('node' | 'c')[] = cClient ? ['node', 'c'] : ['node'];
    for (const client of clients) for (const size of sizes) await measure('tapstack', client, '10.0.0.2', size);
    await stack.stop();
    for (const client of clients) {
      // socat answers the first peer only, then exits: one per run.
      const socat = ns.spawn('socat', ['UDP4-LISTEN:7,bind=127.0.0.1', 'PIPE']);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await measure('kernel loopback (socat)', client, '127.0.0.1', 64);
      if (socat.pid !== undefined && socat.exitCode === null) socat.kill('SIGTERM');
    }
  }, 'bench-udp');
  if (cClient) rmSync(cClient, { force: true });
  process.stdout.write(JSON.stringify({ udpEcho: results }) + '\n');
}

await main();
