// UDP echo round trips per second from the host: tapstack runs its echo service on a TAP in a
// private namespace, and a client on the kernel's UDP in the same namespace does sequential
// round trips, each waiting for its echo. Bounded in count and time. Two clients: Node's dgram
// (test/clients/udp-echo-client.ts) and a small C one (bench/udp-rr.c, built with cc if
// present), since the Node client is itself about as slow as the stack.
//
//   npm run bench:udp [-- COUNT SECONDS SIZES]     (defaults: 100000 10 64,1024,8000)
//   RUNS=N (default 3): runs per figure; the median is reported, with the range.
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
const runs = Math.max(1, Number(process.env.RUNS ?? 3));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

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
  const results: Record<string, { medianRoundTripsPerSecond: number; runs: number[]; lost: number; corrupted: number }> = {};
  const cClient = buildCClient();
  await withNamespace(async (ns) => {
    const once = async (client: 'node' | 'c', host: string, size: number): Promise<EchoResult> => {
      const args = [host, '7', String(size), String(count), String(seconds)];
      const r =
        client === 'node'
          ? await ns.exec(process.execPath, ['--import', LOADER, CLIENT, 'echo', ...args], (seconds + 20) * 1000)
          : await ns.exec(cClient!, args, (seconds + 20) * 1000);
      if (r.code !== 0) throw new Error(`client failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim()) as EchoResult;
    };
    const measure = async (target: string, client: 'node' | 'c', host: string, size: number, before?: () => Promise<() => void>): Promise<void> => {
      const label = `${target}, ${client} client, ${size} B`;
      const all: EchoResult[] = [];
      for (let i = 0; i < runs; i++) {
        const after = await before?.();
        all.push(await once(client, host, size));
        after?.();
      }
      const rates = all.map((r) => Math.round(r.roundTripsPerSecond));
      const lost = all.reduce((n, r) => n + r.lost, 0);
      const corrupted = all.reduce((n, r) => n + r.corrupted, 0);
      results[label] = { medianRoundTripsPerSecond: median(rates), runs: rates, lost, corrupted };
      process.stdout.write(
        `${label}: median ${median(rates)} round trips/s (runs ${rates.join(', ')}; ` +
          `${all.map((r) => r.received).join('/')} echoes, lost ${lost}, corrupted ${corrupted})\n`,
      );
    };
    const stack = await ns.startStack(['--tap', 'tap0', '--services', 'echo']);
    // A short warm-up (ARP, JIT) that is not counted.
    await ns.exec(process.execPath, ['--import', LOADER, CLIENT, 'echo', '10.0.0.2', '7', '64', '500', '5'], 20_000);
    const clients: ('node' | 'c')[] = cClient ? ['node', 'c'] : ['node'];
    for (const client of clients) for (const size of sizes) await measure('tapstack', client, '10.0.0.2', size);
    await stack.stop();
    // socat answers the first peer only, then exits: a fresh one for each run.
    const socat = async (): Promise<() => void> => {
      const child = ns.spawn('socat', ['UDP4-LISTEN:7,bind=127.0.0.1', 'PIPE']);
      await new Promise((resolve) => setTimeout(resolve, 300));
      return () => {
        if (child.pid !== undefined && child.exitCode === null) child.kill('SIGTERM');
      };
    };
    for (const client of clients) await measure('kernel loopback (socat)', client, '127.0.0.1', 64, socat);
  }, 'bench-udp');
  if (cClient) rmSync(cClient, { force: true });
  process.stdout.write(JSON.stringify({ udpEcho: results }) + '\n');
}

await main();
