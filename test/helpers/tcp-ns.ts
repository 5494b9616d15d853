// Helpers for the TCP namespace tests and the TCP benchmark: running TypeScript programs
// inside a namespace, reading the clients' RESULT lines, random loss with nftables, hashes.

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { type ExecResult, type Namespace, ROOT, type StackProcess, withNamespace } from './netns.ts';

const TSX_LOADER = `file://${ROOT}/node_modules/tsx/dist/loader.mjs`;

/** Node's arguments to run a TypeScript file of this checkout (path relative to the root). */
export function tsArgs(script: string, args: string[] = []): string[] {
  return ['--import', TSX_LOADER, path.join(ROOT, script), ...args];
}

/** Runs a TypeScript file of this checkout inside the namespace, with this Node. */
export function execTs(ns: Namespace, script: string, args: string[], timeoutMs: number): Promise<ExecResult> {
  return ns.exec(process.execPath, tsArgs(script, args), timeoutMs);
}

/** The key=value pairs of a client's `RESULT ...` line, or null when there is none. */
export function parseResult(stdout: string): Record<string, string> | null {
  const line = /^RESULT (.*)$/m.exec(stdout);
  if (!line) return null;
  const out: Record<string, string> = {};
  for (const pair of line[1]!.trim().split(/\s+/)) {
    const eq = pair.indexOf('=');
    if (eq > 0) out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** Runs test/clients/tcpcli.ts in the namespace and returns its RESULT fields (throws without one). */
export async function runTcpcli(ns: Namespace, args: string[], timeoutMs: number): Promise<Record<string, string>> {
  const r = await execTs(ns, 'test/clients/tcpcli.ts', args, timeoutMs);
  const result = parseResult(r.stdout);
  if (!result || result.error) throw new Error(`tcpcli ${args.join(' ')}: exit ${r.code} ${r.stdout} ${r.stderr}`);
  return result;
}

const LOSS_TABLE = 'tapstack_loss';

/**
 * Drops `percent`% of the frames in each direction on `device`, chosen at random by the
 * kernel (netem is not available): egress is the kernel towards the stack, ingress the
 * stack towards the kernel. The device must exist (the stack creates it when it starts).
 */
export async function addRandomLoss(ns: Namespace, device: string, percent: number): Promise<void> {
  const rules = `table netdev ${LOSS_TABLE} {
  chain to_stack { type filter hook egress device "${device}" priority 0; numgen random mod 100 < ${percent} counter drop; }
  chain from_stack { type filter hook ingress device "${device}" priority 0; numgen random mod 100 < ${percent} counter drop; }
}
`;
  const r = await ns.exec('nft', ['-f', '-'], 10_000, rules);
  if (r.code !== 0) throw new Error(`nft: ${r.stderr}`);
}

/** Frames the loss rules have dropped so far, per direction. */
export async function lossCounts(ns: Namespace): Promise<{ toStack: number; fromStack: number }> {
  const r = await ns.exec('nft', ['list', 'table', 'netdev', LOSS_TABLE], 10_000);
  const count = (chain: string): number => {
    const m = new RegExp(`chain ${chain} \\{[^}]*counter packets (\\d+)`).exec(r.stdout);
    if (!m) throw new Error(`no counter for ${chain}: ${r.stdout} ${r.stderr}`);
    return Number(m[1]);
  };
  return { toStack: count('to_stack'), fromStack: count('from_stack') };
}

/** SHA-256 of the first n bytes of the /bytes pattern (byte i = i mod 251), computed here. */
export function patternSha256(n: number): string {
  const hash = createHash('sha256');
  const block = Buffer.alloc(251 * 4096);
  for (let i = 0; i < block.length; i++) block[i] = i % 251;
  for (let done = 0; done < n; done += block.length) hash.update(block.subarray(0, Math.min(block.length, n - done)));
  return hash.digest('hex');
}

export function sha256File(file: string): Promise<{ sha256: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    createReadStream(file)
      .on('data', (d) => {
        hash.update(d);
        bytes += d.length;
      })
      .on('end', () => resolve({ sha256: hash.digest('hex'), bytes }))
      .on('error', reject);
  });
}

/** A unique path in the temporary directory; the callback's files are removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = path.join(tmpdir(), `tapstack-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Asks the running stack's HTTP service for /stats with curl from the namespace. */
export async function fetchStats(ns: Namespace, host = '10.0.0.2'): Promise<Record<string, unknown>> {
  const r = await ns.exec('curl', ['-sS', '--max-time', '10', `http://${host}/stats`], 15_000);
  if (r.code !== 0) throw new Error(`curl /stats: exit ${r.code} ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/**
 * Runs fn in a fresh namespace with ./bin/tapstack up on tap0 (10.0.0.2, the kernel at
 * 10.0.0.1) with its default services; then stops it, checks that it exited cleanly, and
 * deletes the namespace, also when fn throws.
 */
export async function withStack<T>(fn: (ns: Namespace, stack: StackProcess) => Promise<T>, stackArgs: string[] = []): Promise<T> {
  return withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0', ...stackArgs]);
    const value = await fn(ns, stack);
    const exit = await stack.stop();
    if (exit.code !== 0) throw new Error(`tapstack exited with ${exit.code ?? exit.signal}: ${stack.stderr}`);
    return value;
  });
}

const BULK_SIZE = 64 * 1024 * 1024;

/** Writes `size` random bytes to a file and returns their SHA-256. */
async function randomFile(file: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  for (let done = 0; done < size; ) {
    const chunk = randomBytes(Math.min(1 << 20, size - done));
    hash.update(chunk);
    done += chunk.length;
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return hash.digest('hex');
}

/**
 * Uploads 64 MiB of random bytes and downloads 64 MiB of the pattern; both hashes must
 * match. Returns how long each direction took (curl's own timing), for the test's log.
 */
export async function upAndDown(ns: Namespace, timeoutMs: number): Promise<{ upSecs: number; downSecs: number }> {
  return withTempDir(async (dir) => {
    const upFile = path.join(dir, 'up');
    const expectedUp = await randomFile(upFile, BULK_SIZE);
    const seconds = String(Math.floor(timeoutMs / 1000));
    const timing = ['-w', '\n%{time_total}'];
    const up = await ns.exec('curl', ['-sS', '--max-time', seconds, ...timing, '--data-binary', `@${upFile}`, 'http://10.0.0.2/sha256'], timeoutMs + 5_000);
    assert.is(up.code, 0, up.stderr);
    const [upHash, upSecs] = up.stdout.split('\n');
    assert.is(upHash, expectedUp, 'SHA-256 of the 64 MiB uploaded');

    const downFile = path.join(dir, 'down');
    const down = await ns.exec('curl', ['-sS', '--max-time', seconds, ...timing, '-o', downFile, `http://10.0.0.2/bytes/${BULK_SIZE}`], timeoutMs + 5_000);
    assert.is(down.code, 0, down.stderr);
    const got = await sha256File(downFile);
    assert.is(got.bytes, BULK_SIZE);
    assert.is(got.sha256, patternSha256(BULK_SIZE), 'SHA-256 of the 64 MiB downloaded');
    return { upSecs: Number(upSecs), downSecs: Number(down.stdout.trim()) };
  });
}

