// The demo: makes its own network namespace, brings tapstack up on a TAP inside it, pings it
// from the kernel's side, prints what happened, and removes the namespace. Needs root.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ns = `tapstack-demo-${randomBytes(3).toString('hex')}`;

function sh(args: string[], show = true): { code: number; out: string } {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 60_000 });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  const shown = args.map((a) => (/[\s"%|\\]/.test(a) ? JSON.stringify(a) : a)).join(' ');
  if (show) process.stdout.write(`$ ${shown}\n${out}`);
  return { code: r.status ?? 1, out };
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('demo: needs root (it creates a network namespace and a TAP device)\n');
    return 1;
  }
  if (!existsSync('/dev/net/tun')) {
    process.stderr.write('demo: /dev/net/tun is missing: this machine has no TUN/TAP support\n');
    return 1;
  }
  if (sh(['ip', 'netns', 'add', ns], false).code !== 0) {
    process.stderr.write(`demo: cannot create network namespace ${ns}\n`);
    return 1;
  }
  process.stdout.write(`demo: created network namespace ${ns}\n`);
  const stack = spawn('ip', ['netns', 'exec', ns, path.join(root, 'bin/tapstack'), '--tap', 'tap0', '--stats-on-exit'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  stack.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    process.stdout.write(d);
  });
  try {
    const deadline = Date.now() + 30_000;
    while (!out.includes('tapstack up ')) {
      if (stack.exitCode !== null || Date.now() > deadline) throw new Error('tapstack did not come up');
      await new Promise((r) => setTimeout(r, 50));
    }
    sh(['ip', 'netns', 'exec', ns, 'ping', '-c', '5', '-i', '0.2', '10.0.0.2']);
    sh(['ip', 'netns', 'exec', ns, 'ping', '-c', '2', '-s', '1472', '-M', 'do', '10.0.0.2']);
    sh(['ip', 'netns', 'exec', ns, 'ip', 'neigh', 'show', 'dev', 'tap0']);
    // The same peer over TCP (Node's http module on the stack) and UDP (echo on port 7).
    sh(['ip', 'netns', 'exec', ns, 'curl', '-sS', '-m', '5', '-o', '/dev/null', '-w', 'HTTP %{http_code}, %{size_download} bytes of /bytes/100000 in %{time_total} s\n', 'http://10.0.0.2/bytes/100000']);
    sh(['ip', 'netns', 'exec', ns, 'sh', '-c', 'printf "hello over UDP\\n" | nc -u -w 1 10.0.0.2 7']);
    process.stdout.write('demo: stopping tapstack (its counters follow)\n');
    stack.kill('SIGTERM');
    await new Promise((r) => stack.once('exit', r));
    return 0;
  } catch (err) {
    process.stderr.write(`demo: ${(err as Error).message}\n`);
    if (stack.exitCode === null) stack.kill('SIGKILL');
    return 1;
  } finally {
    sh(['ip', 'netns', 'del', ns], false);
    process.stdout.write(`demo: removed network namespace ${ns}\n`);
  }
}

main().then((code) => process.exit(code));
