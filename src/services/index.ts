// Services the command line can run on a stack. Each starts on a stack and returns a
// function that stops it. Layers register what they can serve; a name with no
// implementation yet is reported as unavailable rather than silently ignored.

import type { Duplex } from 'node:stream';
import type { Stack } from '../stack.ts';
import { reportToApplication } from '../tcp/application-errors.ts';
import type { Connection } from '../tcp/connection.ts';
import type { Listener } from '../tcp/layer.ts';
import { Socket, type SocketOwner } from '../tcp/socket.ts';
import type { UdpPortHandler, UdpServedPort } from '../udp/udp.ts';
import { systemError } from '../util/errors.ts';

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

/** Starts one part of a service on the stack, taking its ports through `services`. */
export type ServiceStarter = (stack: Stack, options: ServiceOptions, services: ServiceSet) => void | Promise<void>;

/** Linux's default listen backlog for a server that asks for none (Node's 511). */
const SERVICE_BACKLOG = 511;

/** What a TCP service does with each connection: a function, or an object with onConnection. */
export type TcpServiceHandler = ((socket: Duplex) => void) | { onConnection(socket: Duplex): void };

/** What a service's TCP listener carries: its set and its handler. */
interface TcpServiceContext {
  readonly services: ServiceSet;
  readonly handler: TcpServiceHandler;
}

/** Something to do when the set stops: a function, or an object with stop(). */
export type ServiceStop = StopService | { stop(): void | Promise<void> };

function acceptServiceConnection(conn: Connection, listener: Listener): void {
  const context = listener.context as TcpServiceContext;
  context.services.accept(conn, context.handler);
}

/** A peer's reset (ECONNRESET) or a timeout ends that connection, never the process. */
function destroySocket(this: Duplex): void {
  this.destroy();
}

/**
 * A stack's running services: the ports they hold and the connections they serve, stopped
 * together. Like inetd's built-in services (or the kernel's own users of a port), a service
 * takes its port straight from the TCP and UDP layers: no net.Server or dgram socket, no
 * events and no closures per stack, so that 10,000 devices of a fleet each serving echo and
 * HTTP hold a few small objects each. Accepted connections are full sockets (stream.Duplex).
 * While it holds a port, the set keeps Node's event loop alive, as a listening server does.
 */
export class ServiceSet implements SocketOwner {
  /** TCP listeners and served UDP ports, in the order taken (exact-size: replaced as it grows). */
  private held: readonly (Listener | UdpServedPort)[] = [];
  /** Accepted connections not yet destroyed (made at the first). */
  private open: Set<Socket> | null = null;
  private stops: readonly ServiceStop[] = [];
  private holdingLoop = false;
  private stopped = false;

  constructor(readonly stack: Stack) {}

  /** Listens on TCP `port`; each connection, half-open capable, goes to the handler. Throws EADDRINUSE. */
  tcp(port: number, handler: TcpServiceHandler): void {
    const context: TcpServiceContext = { services: this, handler };
    const listener = this.stack.tcp.listen(port, SERVICE_BACKLOG, acceptServiceConnection, context);
    if (listener === 'EADDRINUSE') throw systemError('EADDRINUSE', 'listen', '::', port);
    this.took(listener);
  }

  /** Serves UDP `port` on our unicast address (see UdpServedPort). Throws EADDRINUSE. */
  udp(port: number, handler: UdpPortHandler): void {
    const served = this.stack.udp.servePort(port, handler);
    if (served === 'EADDRINUSE') throw systemError('EADDRINUSE', 'bind', this.stack.address, port);
    this.took(served);
  }

  /** Runs `stop` when the set stops, after its ports are closed (last added, first run). */
  onStop(stop: ServiceStop): void {
    this.stops = this.stops.concat(stop);
  }

  private took(port: Listener | UdpServedPort): void {
    this.held = this.held.concat(port);
    if (!this.holdingLoop) {
      this.holdingLoop = true;
      this.stack.loopHold.ref();
    }
  }

  /** @internal A connection reached ESTABLISHED on one of our listeners. */
  accept(conn: Connection, handler: TcpServiceHandler): void {
    const socket = new Socket(this.stack.tcp, { allowHalfOpen: true });
    socket.attach(conn);
    socket.owner = this;
    (this.open ??= new Set()).add(socket);
    socket.on('error', destroySocket);
    // Called from the TCP layer as the handshake's last ACK is processed: what the service
    // throws is reported as an application's would be (as Server.onAccept does).
    try {
      if (typeof handler === 'function') handler(socket);
      else handler.onConnection(socket);
    } catch (err) {
      reportToApplication(err);
    }
  }

  /** @internal (SocketOwner) an accepted socket was destroyed. */
  socketDestroyed(socket: Socket): void {
    this.open?.delete(socket);
  }

  /** Closes every port, destroys the connections still open, then runs the onStop functions. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const held = this.held;
    this.held = [];
    for (const port of [...held].reverse()) {
      if ('onAccept' in port) this.stack.tcp.unlisten(port);
      else this.stack.udp.unservePort(port);
    }
    if (this.open !== null) for (const socket of [...this.open]) socket.destroy();
    this.open = null;
    const stops = this.stops;
    this.stops = [];
    for (const stop of [...stops].reverse()) await (typeof stop === 'function' ? stop() : stop.stop());
    if (this.holdingLoop) {
      this.holdingLoop = false;
      this.stack.loopHold.unref();
    }
  }
}

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

/** Starts the named services on the stack; if one fails, those started are stopped and the error thrown. */
export async function startServiceSet(stack: Stack, names: readonly ServiceName[], options: ServiceOptions = {}): Promise<ServiceSet> {
  const services = new ServiceSet(stack);
  try {
    for (const name of names) for (const start of registry.get(name) ?? []) await start(stack, options, services);
  } catch (err) {
    await services.stop();
    throw err;
  }
  return services;
}

/** startServiceSet, returning its stop function. */
export async function startServices(stack: Stack, names: readonly ServiceName[], options: ServiceOptions = {}): Promise<StopService> {
  const services = await startServiceSet(stack, names, options);
  return () => services.stop();
}
