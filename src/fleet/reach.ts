// Whether a fleet's devices reach other devices over the wire: each of the first devices opens
// a TCP connection to the echo service (port 7, RFC 862) of one peer address, sends a block,
// checks that the same bytes come back, and pings the peer (ICMP echo, RFC 792). A peer not
// up yet (another fleet still starting, on another host) is tried again until the deadline.
// It is what `tapstack fleet --reach` runs, to check a fleet spread over bridges and VXLAN.

import { randomBytes } from 'node:crypto';
import type { Clock } from '../util/clock.ts';
import type { Device, Fleet } from './fleet.ts';

export interface ReachOptions {
  /** The peers' echo port (default 7). */
  port?: number;
  /** Bytes sent on each connection (default 4000: a few segments). */
  bytes?: number;
  /** How long a pair may take, retries included (default 30 s). */
  deadlineMs?: number;
  /** One attempt's limit (default 3 s), and the pause between attempts (default 250 ms). */
  attemptMs?: number;
  retryMs?: number;
}

export interface ReachResult {
  from: string;
  fromAddress: string;
  to: string;
  /** From connect to the last echoed byte, and the ping's round trip, in ms (the successful attempt's). */
  echoMs: number | null;
  pingMs: number | null;
  attempts: number;
  /** The last failure, when echo or ping never succeeded. */
  error: string | null;
}

/** Runs work until it settles or ms of the fleet's clock pass (then cleanup ends it: no socket is left behind). */
function withTimeout<T>(clock: Clock, work: (settle: (err: Error | null, value?: T) => void) => () => void, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    let cleanup: () => void = () => {};
    const timer = clock.setTimer(ms, () => settle(Object.assign(new Error(`no answer in ${ms} ms`), { code: 'ETIMEDOUT' })));
    let done = false;
    function settle(err: Error | null, value?: T): void {
      if (done) return;
      done = true;
      timer.cancel();
      cleanup();
      if (err !== null) reject(err);
      else resolve(value as T);
    }
    cleanup = work(settle);
  });
}

/** One TCP echo exchange from a device: resolves with its duration once every byte came back intact. */
function echoOnce(clock: Clock, device: Device, host: string, port: number, payload: Buffer, ms: number): Promise<number> {
  const started = clock.now();
  return withTimeout<number>(clock, (settle) => {
    const socket = device.stack.connect({ host, port });
    const chunks: Buffer[] = [];
    let got = 0;
    socket.on('connect', () => socket.end(payload));
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got > payload.length) settle(new Error(`echo sent back ${got} bytes, more than the ${payload.length} sent`));
    });
    socket.on('end', () => {
      if (Buffer.concat(chunks).equals(payload)) settle(null, clock.now() - started);
      else settle(new Error(`echo sent back ${got} bytes, not the ${payload.length} sent`));
    });
    socket.on('error', (err) => settle(err));
    return () => socket.destroy();
  }, ms);
}

async function reachOne(clock: Clock, device: Device, to: string, o: Required<ReachOptions>): Promise<ReachResult> {
  const result: ReachResult = { from: device.name, fromAddress: device.address ?? '', to, echoMs: null, pingMs: null, attempts: 0, error: null };
  const payload = randomBytes(o.bytes);
  const deadline = clock.now() + o.deadlineMs;
  while (result.echoMs === null || result.pingMs === null) {
    result.attempts++;
    try {
      result.echoMs ??= await echoOnce(clock, device, to, o.port, payload, o.attemptMs);
      result.pingMs ??= await device.stack.ping(to, { timeoutMs: o.attemptMs });
      result.error = null;
    } catch (err) {
      result.error = `${(err as { code?: string }).code ?? 'error'}: ${(err as Error).message}`;
      if (clock.now() + o.retryMs >= deadline) break;
      await new Promise((r) => clock.setTimer(o.retryMs, () => r(undefined)));
    }
  }
  return result;
}

/** Device i of the first targets.length reaches targets[i]; all pairs at once. */
export function reachPeers(fleet: Fleet, targets: readonly string[], options: ReachOptions = {}): Promise<ReachResult[]> {
  if (targets.length > fleet.size) throw new RangeError(`${targets.length} peers for ${fleet.size} devices`);
  const o: Required<ReachOptions> = { port: 7, bytes: 4000, deadlineMs: 30_000, attemptMs: 3000, retryMs: 250, ...options };
  return Promise.all(targets.map((to, i) => reachOne(fleet.clock, fleet.devices[i]!, to, o)));
}
