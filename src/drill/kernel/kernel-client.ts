// The host's Linux TCP for a process that stays in the machine's namespace (the fuzzer): a
// namespace made for it, a child inside it serving a KernelTarget (kernel-host.ts), and
// requests to it. close() ends the child (by its PID if it does not go) and deletes the
// namespace.

import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { SyscallLine } from '../parse.ts';
import type { SentFrame, SyscallOutcome } from '../target.ts';
import type { HostReply, HostRequest } from './kernel-host.ts';
import { childArgs, createNamespace, deleteNamespace, KernelTargetError } from './namespace.ts';

/** A request the child has not answered by then is a dead child. */
const REPLY_TIMEOUT_MS = 30_000;

export class KernelHostClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: HostReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  /** The child's clock at its last reply, and ours then: now() between replies. */
  private childNow = 0;
  private localAt = performance.now();
  private exited = false;

  private constructor(
    private readonly namespace: string,
    private readonly child: ChildProcess,
  ) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let reply: HostReply;
      try {
        reply = JSON.parse(line) as HostReply;
      } catch {
        return;
      }
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      clearTimeout(p.timer);
      this.childNow = reply.now;
      this.localAt = performance.now();
      if (reply.error) p.reject(new KernelTargetError(reply.error));
      else p.resolve(reply);
    });
    child.stderr!.resume();
    child.on('exit', () => {
      this.exited = true;
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(new KernelTargetError('the kernel host exited'));
      }
      this.pending.clear();
    });
  }

  /** Makes the namespace and starts the child; start() then brings the kernel's device up. */
  static open(): KernelHostClient {
    const namespace = createNamespace('fuzz');
    const child = spawn('ip', childArgs(namespace, 'kernel-host', []), { stdio: ['pipe', 'pipe', 'pipe'] });
    return new KernelHostClient(namespace, child);
  }

  private request(req: Omit<HostRequest, 'id'>): Promise<unknown> {
    if (this.exited) return Promise.reject(new KernelTargetError('the kernel host exited'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new KernelTargetError(`the kernel host did not answer ${req.op} within ${REPLY_TIMEOUT_MS} ms`));
      }, REPLY_TIMEOUT_MS);
      this.pending.set(id, { resolve: (r) => resolve(r.result), reject, timer });
      this.child.stdin!.write(JSON.stringify({ ...req, id }) + '\n');
    });
  }

  /** The target's time (ms since its start). */
  now(): number {
    return this.childNow + (performance.now() - this.localAt);
  }

  async start(commands: string[]): Promise<{ refused: string[] }> {
    return (await this.request({ op: 'start', commands })) as { refused: string[] };
  }

  async syscall(call: SyscallLine): Promise<SyscallOutcome> {
    return (await this.request({ op: 'syscall', call })) as SyscallOutcome;
  }

  async inject(frame: Buffer): Promise<void> {
    await this.request({ op: 'inject', frame: frame.toString('base64') });
  }

  async wait(ms: number): Promise<void> {
    await this.request({ op: 'wait', ms });
  }

  async take(): Promise<SentFrame[]> {
    const frames = (await this.request({ op: 'take' })) as { at: number; frame: string }[];
    return frames.map((f) => ({ at: f.at, frame: Buffer.from(f.frame, 'base64') }));
  }

  async info(): Promise<Record<string, number> | null> {
    return (await this.request({ op: 'info' })) as Record<string, number> | null;
  }

  /** The state of the connection between these ports (ss's view), null when the kernel has none. */
  async state(localPort: number, remotePort: number): Promise<string | null> {
    return (await this.request({ op: 'state', localPort, remotePort })) as string | null;
  }

  async close(): Promise<void> {
    try {
      if (!this.exited) await this.request({ op: 'close' });
    } catch {
      // a dead child: ended below
    }
    if (!this.exited && this.child.pid !== undefined) {
      await new Promise((r) => setTimeout(r, 200));
      if (!this.exited) process.kill(this.child.pid, 'SIGKILL');
    }
    deleteNamespace(this.namespace);
  }
}
