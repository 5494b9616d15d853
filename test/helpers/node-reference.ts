// Runs one compatibility scenario twice: on Node's own net/dgram (in a child process inside
// a network namespace made for it and deleted afterwards: its loopback is private, nothing
// touches the machine's main namespace) and on tapstack (two stacks on an in-memory link in
// this process, on real time). A scenario file (test/compat/*.ts) exports
// `scenarios: Record<string, Scenario>`; each returns a JSON-able record (events in order,
// error codes, bytes) that the test compares.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as nodeDgram from 'node:dgram';
import type * as nodeNet from 'node:net';
import { createLinkPair } from '../../src/link/memory.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import { RealClock } from '../../src/util/clock.ts';
import { ROOT, withNamespace } from './netns.ts';

/** What a scenario gets: a server side and a client side (the same module on Node). */
export interface CompatEnv {
  /** 'node' or 'tapstack'. */
  readonly kind: 'node' | 'tapstack';
  /** net-like modules for the server's side and the client's side. */
  readonly serverNet: NetLike;
  readonly clientNet: NetLike;
  readonly serverDgram: DgramLike;
  readonly clientDgram: DgramLike;
  /** The server side's address as the client dials it ('127.0.0.1' on Node). */
  readonly serverAddress: string;
  readonly clientAddress: string;
}

export type NetLike = Pick<typeof nodeNet, 'createServer' | 'connect' | 'createConnection'>;
export type DgramLike = Pick<typeof nodeDgram, 'createSocket'>;
export type Scenario = (env: CompatEnv) => Promise<unknown>;

const RUNNER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'node-reference-runner.ts');
const TSX = `file://${ROOT}/node_modules/tsx/dist/loader.mjs`;

/**
 * The scenario on Node's own sockets, inside a fresh namespace (needs root). `setup`: commands
 * run inside the namespace first (e.g. ['ip', 'route', 'add', '224.0.0.0/4', 'dev', 'lo'] so
 * that Node can multicast over its loopback).
 */
export async function onNode(file: string, name: string, timeoutMs = 30_000, setup: readonly (readonly string[])[] = []): Promise<unknown> {
  return withNamespace(async (ns) => {
    for (const [cmd, ...args] of setup) {
      const s = await ns.exec(cmd!, args);
      if (s.code !== 0) throw new Error(`node reference setup ${cmd} ${args.join(' ')}: ${s.stderr}`);
    }
    const r = await ns.exec(process.execPath, ['--import', TSX, RUNNER, file, name], timeoutMs);
    if (r.code !== 0) throw new Error(`node reference ${name}: exit ${r.code}: ${r.stdout}${r.stderr}`);
    const lines = r.stdout.trim().split('\n');
    return JSON.parse(lines[lines.length - 1]!);
  }, 'compat');
}

/**
 * net- and dgram-like modules of a stack, until the stack has its own (issue 11 item 4:
 * stack.net, stack.dgram); then they are used directly.
 */
function netOf(stack: Stack): NetLike {
  const own = (stack as unknown as { net?: NetLike }).net;
  if (own) return own;
  return {
    createServer: ((...args: unknown[]) => (stack.createServer as (...a: unknown[]) => unknown)(...args)) as NetLike['createServer'],
    connect: ((...args: unknown[]) => (stack.connect as (...a: unknown[]) => unknown)(...args)) as NetLike['connect'],
    createConnection: ((...args: unknown[]) => (stack.connect as (...a: unknown[]) => unknown)(...args)) as NetLike['createConnection'],
  };
}

function dgramOf(stack: Stack): DgramLike {
  const own = (stack as unknown as { dgram?: DgramLike }).dgram;
  if (own) return own;
  return { createSocket: ((...args: unknown[]) => (stack.createSocket as (...a: unknown[]) => unknown)(...args)) as DgramLike['createSocket'] };
}

/** The scenario on two tapstacks (client 10.0.0.1, server 10.0.0.2) on an in-memory link. */
export async function onTapstack(file: string, name: string): Promise<unknown> {
  const scenario = await load(file, name);
  const clock = new RealClock();
  const [la, lb] = createLinkPair(clock, { mtu: 1500 });
  const client = await createStack({ clock, link: la, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1 });
  const server = await createStack({ clock, link: lb, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 2 });
  try {
    return await scenario({
      kind: 'tapstack',
      serverNet: netOf(server),
      clientNet: netOf(client),
      serverDgram: dgramOf(server),
      clientDgram: dgramOf(client),
      serverAddress: '10.0.0.2',
      clientAddress: '10.0.0.1',
    });
  } finally {
    await client.close();
    await server.close();
  }
}

export async function load(file: string, name: string): Promise<Scenario> {
  const mod = (await import(path.resolve(file))) as { scenarios?: Record<string, Scenario> };
  const scenario = mod.scenarios?.[name];
  if (!scenario) throw new Error(`${file}: no scenario ${name}`);
  return scenario;
}

/**
 * Records an emitter's events into `log` as "label:event", with an error's code
 * ("label:error:ECONNRESET"); for comparisons of order and codes.
 */
export function recordEvents(log: string[], label: string, emitter: NodeJS.EventEmitter, events: readonly string[]): void {
  for (const event of events)
    emitter.on(event, (arg: unknown) => {
      if (event === 'error') log.push(`${label}:error:${(arg as NodeJS.ErrnoException)?.code ?? (arg as Error)?.name}`);
      else if (event === 'close' && typeof arg === 'boolean') log.push(`${label}:close:${arg ? 'hadError' : 'clean'}`);
      else log.push(`${label}:${event}`);
    });
}
