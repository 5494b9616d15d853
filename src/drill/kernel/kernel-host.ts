// A kernel target served to a process outside the namespace (the fuzzer's kernel target):
// started by KernelHostClient inside a namespace it made, it runs one KernelTarget and
// answers requests, one JSON line each way on stdin and stdout: start, syscall, inject, wait,
// take, info, close. Frames travel as base64; times are the target's (ms since start).

import { execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { SyscallLine } from '../parse.ts';
import { KernelTarget } from './kernel-target.ts';

export interface HostRequest {
  id: number;
  op: 'start' | 'syscall' | 'inject' | 'wait' | 'take' | 'info' | 'state' | 'close';
  /** start: shell lines (sysctls) to apply first. */
  commands?: string[];
  call?: SyscallLine;
  frame?: string;
  ms?: number;
  /** state: the connection's ports (its local one, and the remote's). */
  localPort?: number;
  remotePort?: number;
}

export interface HostReply {
  id: number;
  now: number;
  error?: string;
  result?: unknown;
}

/** How long a call may take to return before the host answers that it blocked. */
const CALL_LIMIT_MS = 1000;

const target = new KernelTarget();

/** ss's state names (iproute2) as RFC 9293 writes them. */
const SS_STATES: Record<string, string> = {
  ESTAB: 'ESTABLISHED',
  'SYN-SENT': 'SYN-SENT',
  'SYN-RECV': 'SYN-RECEIVED',
  'FIN-WAIT-1': 'FIN-WAIT-1',
  'FIN-WAIT-2': 'FIN-WAIT-2',
  'TIME-WAIT': 'TIME-WAIT',
  'CLOSE-WAIT': 'CLOSE-WAIT',
  'LAST-ACK': 'LAST-ACK',
  CLOSING: 'CLOSING',
  LISTEN: 'LISTEN',
};

/**
 * The state of the connection between these ports as the kernel holds it, also once no
 * descriptor names it (FIN-WAIT, TIME-WAIT): `ss -Htan` in this namespace; null when none.
 */
function connectionState(localPort: number, remotePort: number): string | null {
  const out = execFileSync('ss', ['-Htan'], { encoding: 'utf8' });
  for (const line of out.split('\n')) {
    const [state, , , local, peer] = line.trim().split(/\s+/);
    if (!state || !local || !peer) continue;
    if (local.endsWith(`:${localPort}`) && peer.endsWith(`:${remotePort}`)) return SS_STATES[state] ?? null;
  }
  return null;
}

async function waitFor(ms: number, done?: () => boolean): Promise<void> {
  const until = target.now() + ms;
  while (!done?.() && (await target.advance(until)));
}

async function handle(req: HostRequest): Promise<unknown> {
  switch (req.op) {
    case 'start':
      for (const c of req.commands ?? []) target.command(c, '.');
      await target.start();
      return { refused: target.refused };
    case 'syscall': {
      const started = target.syscalls.start(req.call!);
      await target.settle();
      let outcome = started.poll();
      if (!outcome) {
        await waitFor(CALL_LIMIT_MS, () => started.poll() !== null);
        outcome = started.poll() ?? { ret: -1, errno: 'EWOULDBLOCK', detail: `still blocked after ${CALL_LIMIT_MS} ms` };
      }
      return outcome;
    }
    case 'inject':
      target.inject(Buffer.from(req.frame!, 'base64'));
      await target.settle();
      return null;
    case 'wait':
      await waitFor(req.ms ?? 0);
      return null;
    case 'take':
      await target.settle();
      return target.take().map((f) => ({ at: f.at, frame: f.frame.toString('base64') }));
    case 'info':
      return target.syscalls.infoOfSocketUnderTest();
    case 'state':
      return connectionState(req.localPort!, req.remotePort!);
    case 'close':
      await target.close();
      return null;
  }
}

const lines = createInterface({ input: process.stdin });
// One request at a time, in order.
let queue = Promise.resolve();
lines.on('line', (line) => {
  queue = queue.then(async () => {
    const req = JSON.parse(line) as HostRequest;
    let reply: HostReply;
    try {
      reply = { id: req.id, now: target.now(), result: await handle(req) };
    } catch (err) {
      reply = { id: req.id, now: target.now(), error: (err as Error).message };
    }
    reply.now = target.now();
    process.stdout.write(JSON.stringify(reply) + '\n');
    if (req.op === 'close') process.exit(0);
  });
});
lines.on('close', () => process.exit(0));
