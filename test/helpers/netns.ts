// Network namespaces for integration tests. Each test makes its own namespace (never the
// machine's main one), runs the stack and the kernel's tools inside it, and deletes it
// afterwards, also when the test fails. Processes are ended by PID only.

import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const TAPSTACK = path.join(ROOT, 'bin/tapstack');

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command (bounded by timeoutMs) and collects its output; never rejects. */
export function run(cmd: string, args: string[], timeoutMs = 30_000, input?: string | Buffer): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024, encoding: 'buffer' }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code as number | null) ?? null : 0;
      resolve({ code: typeof code === 'number' ? code : null, stdout: stdout.toString(), stderr: stderr.toString() });
    });
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

/**
 * Namespaces not yet destroyed. If the test process ends without destroy() (an exception
 * outside withNamespace, an unhandled rejection, a signal), they are deleted on the way out,
 * and their processes ended by PID.
 */
const live = new Set<Namespace>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const ns of live) ns.destroySync();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => {
      for (const ns of live) ns.destroySync();
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    });
}

export class Namespace {
  readonly name: string;
  private readonly children: ChildProcess[] = [];

  private constructor(name: string) {
    this.name = name;
  }

  static async create(prefix = 'tst'): Promise<Namespace> {
    const name = `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`;
    const r = await run('ip', ['netns', 'add', name]);
    if (r.code !== 0) throw new Error(`ip netns add ${name}: ${r.stderr}`);
    const ns = new Namespace(name);
    installExitHook();
    live.add(ns);
    await ns.exec('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Runs a command inside the namespace. */
  exec(cmd: string, args: string[], timeoutMs = 30_000, input?: string | Buffer): Promise<ExecResult> {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], timeoutMs, input);
  }

  /** Starts a long-running process inside the namespace; it is ended (by PID) on destroy(). */
  spawn(cmd: string, args: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.push(child);
    return child;
  }

  /** Starts ./bin/tapstack in the namespace and waits for its `tapstack up` line. */
  async startStack(args: string[] = [], timeoutMs = 20_000): Promise<StackProcess> {
    const child = this.spawn(TAPSTACK, args);
    const sp = new StackProcess(child);
    await sp.waitFor(/^tapstack up /m, timeoutMs);
    return sp;
  }

  async destroy(): Promise<void> {
    this.killChildren();
    await run('ip', ['netns', 'del', this.name]);
    live.delete(this);
  }

  /** The same, synchronously, for the process exit hook. */
  destroySync(): void {
    this.killChildren();
    spawnSync('ip', ['netns', 'del', this.name]);
    live.delete(this);
  }

  private killChildren(): void {
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
  }

  /** Whether the namespace still exists (for tests of the clean-up itself). */
  async exists(): Promise<boolean> {
    const r = await run('ip', ['netns', 'list']);
    return r.stdout.split('\n').some((l) => l.split(' ')[0] === this.name);
  }
}

export class StackProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  }

  waitFor(pattern: RegExp, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const check = (): void => {
        if (pattern.test(this.stdout)) return resolve();
        if (this.child.exitCode !== null) return reject(new Error(`tapstack exited (${this.child.exitCode}): ${this.stderr}`));
        if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${pattern}: ${this.stdout} ${this.stderr}`));
        setTimeout(check, 20);
      };
      check();
    });
  }

  /** SIGTERM by PID; resolves with the exit status. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.pid !== undefined) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.pid !== undefined && this.child.kill('SIGKILL'), 10_000);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }
}

/** Runs fn with a fresh namespace that is deleted afterwards whatever happens. */
export async function withNamespace<T>(fn: (ns: Namespace) => Promise<T>, prefix?: string): Promise<T> {
  const ns = await Namespace.create(prefix);
  try {
    return await fn(ns);
  } finally {
    await ns.destroy();
  }
}
