// Services the command line can run on a stack. Each starts on a stack and returns a
// function that stops it. Layers register what they can serve; a name with no
// implementation yet is reported as unavailable rather than silently ignored.

import type { Stack } from '../stack.ts';

export type StopService = () => void | Promise<void>;

/** Settings from the command line that services read. */
export interface ServiceOptions {
  /**
   * chargen: send this many bytes and close (like the source service of the C peers that
   * the benchmark compares with); unset, chargen sends until the peer closes (RFC 864).
   */
  chargenBytes?: number;
  /** The HTTP service's timeouts (Node's defaults: headers 60 s, request 300 s, keep-alive 5 s). */
  http?: HttpServiceOptions;
}

/** The HTTP service's timeouts (Node's http.Server defaults). */
export interface HttpServiceOptions {
  /** A client must send its whole request head within this (Node headersTimeout: 60 s). */
  headersTimeoutMs?: number;
  /** ...and its whole request within this; 0: no limit (Node requestTimeout: 300 s). */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this (Node keepAliveTimeout: 5 s). */
  keepAliveTimeoutMs?: number;
  /** How often the two above are checked (Node connectionsCheckingInterval, 30 s); default a quarter of headersTimeoutMs, at most 30 s. */
  checkIntervalMs?: number;
}

export type ServiceStarter = (stack: Stack, options: ServiceOptions) => StopService | Promise<StopService>;

/** The names the command line accepts, in the order they are started. */
export const SERVICE_NAMES = ['echo', 'discard', 'chargen', 'http'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** Parts of each service (a UDP part, a TCP part, ...); filled in by the modules below. */
const registry = new Map<ServiceName, ServiceStarter[]>();

export function registerService(name: ServiceName, start: ServiceStarter): void {
  const list = registry.get(name) ?? [];
  list.push(start);
  registry.set(name, list);
}

export function availableServices(): ServiceName[] {
  return SERVICE_NAMES.filter((n) => (registry.get(n)?.length ?? 0) > 0);
}

export async function startServices(stack: Stack, names: readonly ServiceName[], options: ServiceOptions = {}): Promise<StopService> {
  const stops: StopService[] = [];
  for (const name of names) for (const start of registry.get(name) ?? []) stops.push(await start(stack, options));
  return async () => {
    for (const stop of stops.reverse()) await stop();
  };
}
