// The namespaces the kernel target makes: one per script (or fuzz run), deleted afterwards,
// also when this process exits without cleaning up; and how a child process of ours is
// started inside one (the same Node and loader as this process, at a higher priority: real
// time on a shared machine).

import { execFileSync } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

export class KernelTargetError extends Error {}

const live = new Set<string>();
let hooked = false;
let sequence = 0;

export function deleteNamespace(name: string): void {
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    // already gone
  }
  live.delete(name);
}

/** Makes a fresh namespace (loopback up) and returns its name; needs root. */
export function createNamespace(purpose: string): string {
  if (process.getuid?.() !== 0) throw new KernelTargetError('the kernel target needs root (it makes a network namespace and a TAP device)');
  const name = `tapstack-${purpose}-${process.pid}-${++sequence}`;
  try {
    execFileSync('ip', ['netns', 'add', name], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new KernelTargetError(`ip netns add ${name}: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`);
  }
  live.add(name);
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const n of live) deleteNamespace(n);
    });
  }
  execFileSync('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  return name;
}

/**
 * The `ip` arguments that run a module of this directory (by its base name) inside the
 * namespace: the child runs as this process does (the same Node, tsx's loader from a
 * checkout), with --expose-gc (the target collects before time 0) and at nice -10, so that
 * other work delays the script's packets less (packetdrill's verdicts suffer the same).
 */
export function childArgs(namespace: string, module: string, args: string[]): string[] {
  const here = fileURLToPath(import.meta.url);
  const ext = extname(here);
  const file = here.slice(0, -ext.length).replace(/namespace$/, module) + ext;
  return ['netns', 'exec', namespace, 'nice', '-n', '-10', process.execPath, '--expose-gc', ...process.execArgv, file, ...args];
}
