// dgram scenarios run on Node's own dgram (in a namespace) and on two tapstacks: send
// callbacks of every signature, the synchronous errors of misuse, buffer sizes, connect and
// bind events in order, multicast memberships with their errnos and group delivery.
import { once } from 'node:events';
import type { Socket } from 'node:dgram';
import { type CompatEnv, recordEvents } from '../helpers/node-reference.ts';

const EVENTS = ['listening', 'connect', 'close', 'error'] as const;
const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** What a call gave: "ok:<result>" or the error's name, code and (but for TypeErrors) message. */
function outcome(fn: () => unknown): string {
  try {
    const r = fn();
    return `ok:${r === undefined || typeof r === 'object' ? typeof r : String(r)}`;
  } catch (err) {
    const e = err as Error & { code?: string };
    return e.name === 'TypeError' ? `${e.name}:${e.code}` : `${e.name}:${e.code}:${e.message}`;
  }
}

async function bound(env: CompatEnv, side: 'server' | 'client', port: number, address?: string, reuseAddr = false): Promise<Socket> {
  const dgram = side === 'server' ? env.serverDgram : env.clientDgram;
  const s = dgram.createSocket({ type: 'udp4', reuseAddr });
  s.bind(port, address);
  await once(s, 'listening');
  return s;
}

function received(s: Socket): string[] {
  const got: string[] = [];
  s.on('message', (m: Buffer, r) => got.push(`${m.toString()}:${r.size}`));
  return got;
}

const basic = {
  /** Every send signature calls its callback with (null, bytes), errors with (err). */
  async sendCallbacks(env: CompatEnv): Promise<unknown> {
    const server = await bound(env, 'server', 7200, env.serverAddress);
    const local = await bound(env, 'client', 7201); // 'localhost' is the client's own host
    const toServer = received(server);
    const toLocal = received(local);
    const client = env.clientDgram.createSocket('udp4');
    const log: string[] = [];
    recordEvents(log, 'client', client, EVENTS);
    const cb =
      (label: string) =>
      (...args: unknown[]): void => {
        const [err, n] = args as [(Error & { code?: string }) | null, number | undefined];
        log.push(`${label}:${args.length}:${err ? err.code : err}:${n}`);
      };
    client.send('full', 7200, env.serverAddress, cb('port-address'));
    client.send('short', 7201, cb('port'));
    client.send(Buffer.from('xoffsetx'), 1, 6, 7201, cb('offset-length-port'));
    client.send(Buffer.from('xoffsetx'), 1, 6, 7200, env.serverAddress, cb('offset-length-port-address'));
    client.send(['li', 'st'], 7200, env.serverAddress, cb('list'));
    client.send(new Uint16Array([0x6968]), 7200, env.serverAddress, cb('typed-array'));
    client.send(Buffer.alloc(70000), 7200, env.serverAddress, cb('too-big'));
    client.send(Buffer.alloc(70000), 7200, env.serverAddress); // no callback: not emitted
    client.send('no callback', 7200, env.serverAddress);
    await wait(200);
    client.close();
    server.close();
    local.close();
    await wait(20);
    return { log, toServer: toServer.sort(), toLocal: toLocal.sort() };
  },

  /** Misuse before and after bind and after close: the errors Node throws, at once. */
  async socketErrors(env: CompatEnv): Promise<unknown> {
    const out: Record<string, string> = {};
    const s = env.clientDgram.createSocket('udp4');
    const unboundCalls: Record<string, () => unknown> = {
      address: () => s.address(),
      getRecvBufferSize: () => s.getRecvBufferSize(),
      setSendBufferSize: () => s.setSendBufferSize(1000),
      getSendQueueSize: () => s.getSendQueueSize(),
      getSendQueueCount: () => s.getSendQueueCount(),
      setTTL: () => s.setTTL(5),
      setBroadcast: () => s.setBroadcast(true),
      setMulticastTTL: () => s.setMulticastTTL(5),
      setMulticastLoopback: () => s.setMulticastLoopback(false),
      setMulticastInterface: () => s.setMulticastInterface(env.clientAddress),
      remoteAddress: () => s.remoteAddress(),
      disconnect: () => s.disconnect(),
      sendBadPort: () => s.send('x', 70000, env.serverAddress),
      sendPortZero: () => s.send('x', 0, env.serverAddress),
      connectPortZero: () => s.connect(0),
      bindBadPort: () => s.bind(70000),
      ref: () => s.ref() === s,
      unref: () => s.unref() === s,
    };
    for (const [name, fn] of Object.entries(unboundCalls)) out[`unbound ${name}`] = outcome(fn);
    // The bad port left the socket binding: Node's bind again throws, a send waits forever.
    out['bind after a bad port'] = outcome(() => s.bind(0));
    s.close();
    return { ...out, ...(await boundErrors(env)) };
  },

  async connectEvents(env: CompatEnv): Promise<unknown> {
    return connectEvents(env);
  },
};

async function boundErrors(env: CompatEnv): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    const s = env.clientDgram.createSocket('udp4');
    s.bind(0);
    await once(s, 'listening');
    const boundCalls: Record<string, () => unknown> = {
      bindAgain: () => s.bind(0),
      setRecv10000: () => s.setRecvBufferSize(10000),
      getRecv: () => s.getRecvBufferSize(),
      setSend100000: () => s.setSendBufferSize(100000),
      getSend: () => s.getSendBufferSize(),
      setRecvTiny: () => s.setRecvBufferSize(1),
      getRecvTiny: () => s.getRecvBufferSize(),
      setSendTiny: () => s.setSendBufferSize(1),
      getSendTiny: () => s.getSendBufferSize(),
      setRecvNegative: () => s.setRecvBufferSize(-1),
      setRecvFraction: () => s.setRecvBufferSize(1.5),
      setRecvString: () => s.setRecvBufferSize('x' as unknown as number),
      getSendQueueSize: () => s.getSendQueueSize(),
      getSendQueueCount: () => s.getSendQueueCount(),
      setTTL0: () => s.setTTL(0),
      setTTL256: () => s.setTTL(256),
      setTTLFraction: () => s.setTTL(1.5),
      setTTLString: () => s.setTTL('a' as unknown as number),
      setMulticastTTL0: () => s.setMulticastTTL(0),
      setMulticastTTL256: () => s.setMulticastTTL(256),
      setMulticastTTLNegative: () => s.setMulticastTTL(-1),
      setMulticastTTLString: () => s.setMulticastTTL('a' as unknown as number),
      setMulticastLoopback0: () => s.setMulticastLoopback(0 as unknown as boolean),
      setMulticastInterfaceOther: () => s.setMulticastInterface('10.9.9.9'),
      setMulticastInterfaceAny: () => s.setMulticastInterface('0.0.0.0'),
      setMulticastInterfaceOurs: () => s.setMulticastInterface(env.clientAddress),
      setMulticastInterfaceBad: () => s.setMulticastInterface('bad'),
      setMulticastInterfaceNumber: () => s.setMulticastInterface(5 as unknown as string),
      addMembershipMissing: () => (s.addMembership as (...a: unknown[]) => void)(),
      setBroadcast: () => s.setBroadcast(true),
    };
    for (const [name, fn] of Object.entries(boundCalls)) out[`bound ${name}`] = outcome(fn);
    const sized = env.clientDgram.createSocket({ type: 'udp4', recvBufferSize: 50000, sendBufferSize: 60000 });
    sized.bind(0);
    await once(sized, 'listening');
    out['options sizes'] = `${sized.getRecvBufferSize()},${sized.getSendBufferSize()}`;
    sized.close();
    s.close();
    out['close twice'] = outcome(() => s.close());
    out['address after close'] = outcome(() => s.address());
    out['addMembership after close'] = outcome(() => s.addMembership('239.1.1.1'));
    out['ref after close'] = outcome(() => s.ref() === s);
    return out;
}

/** connect: 'listening' then 'connect'; not connected until then; sends; disconnect; close. */
async function connectEvents(env: CompatEnv): Promise<unknown> {
    const server = await bound(env, 'server', 7210, env.serverAddress);
    const got = received(server);
    const log: string[] = [];
    const client = env.clientDgram.createSocket('udp4');
    recordEvents(log, 'client', client, EVENTS);
    client.connect(7210, env.serverAddress, () => log.push('connect-callback'));
    log.push(`connecting remoteAddress ${outcome(() => client.remoteAddress())}`);
    log.push(`connecting connect ${outcome(() => client.connect(7210, env.serverAddress))}`);
    log.push(`connecting send ${outcome(() => client.send('early'))}`);
    await once(client, 'connect');
    const r = client.remoteAddress();
    log.push(`remote port ${r.port} ${r.family}`);
    client.send('one', (err, n) => log.push(`cb ${err} ${n}`));
    client.send(Buffer.from('xtwox'), 1, 3, (err, n) => log.push(`cb2 ${err} ${n}`));
    log.push(`send with port ${outcome(() => client.send('x', 0, 1, 7210, env.serverAddress))}`);
    await wait(100);
    client.disconnect();
    log.push(`after disconnect ${outcome(() => client.remoteAddress())}`);
    log.push(`disconnect again ${outcome(() => client.disconnect())}`);
    client.close(() => log.push('close-callback'));
    await wait(20);
    server.close();
    return { log, got };
}

const more = {
  /** bind: events, address, a taken port, close callbacks. */
  async bindEvents(env: CompatEnv): Promise<unknown> {
    const log: string[] = [];
    const a = env.serverDgram.createSocket('udp4');
    recordEvents(log, 'a', a, EVENTS);
    a.bind(7220, env.serverAddress, () => log.push('a:bind-callback'));
    log.push(`a bind again ${outcome(() => a.bind(7221))}`);
    await once(a, 'listening');
    log.push(`a port ${a.address().port}`);
    const b = env.serverDgram.createSocket('udp4');
    recordEvents(log, 'b', b, EVENTS);
    b.bind(7220, env.serverAddress, () => log.push('b:bind-callback'));
    await wait(50);
    const c = env.serverDgram.createSocket({ type: 'udp4', reuseAddr: true });
    recordEvents(log, 'c', c, EVENTS);
    c.bind({ port: 7222, address: env.serverAddress }, () => log.push('c:bind-callback'));
    await wait(50);
    const d = env.serverDgram.createSocket({ type: 'udp4', reuseAddr: true });
    recordEvents(log, 'd', d, EVENTS);
    d.bind(7222);
    await wait(50);
    a.close(() => log.push('a:close-callback'));
    b.close();
    c.close();
    d.close();
    await wait(20);
    return log;
  },

  /** Membership calls and their errnos (Node needs a multicast route in its namespace). */
  async multicastErrors(env: CompatEnv): Promise<unknown> {
    const out: Record<string, string> = {};
    const early = env.clientDgram.createSocket('udp4');
    const log: string[] = [];
    recordEvents(log, 'early', early, EVENTS);
    out['before bind addMembership'] = outcome(() => early.addMembership('239.1.2.3'));
    out['before bind address'] = outcome(() => early.address().address);
    early.bind(7230);
    await wait(50);
    out['bind after membership'] = log.join(',');
    early.close();
    const s = await bound(env, 'client', 0);
    const calls: Record<string, () => unknown> = {
      add: () => s.addMembership('239.1.2.3'),
      addAgain: () => s.addMembership('239.1.2.3'),
      addUnicast: () => s.addMembership('10.0.0.9'),
      addBad: () => s.addMembership('bad'),
      addOtherInterface: () => s.addMembership('239.1.2.4', '10.9.9.9'),
      addOurInterface: () => s.addMembership('239.1.2.5', env.clientAddress),
      addBadInterface: () => s.addMembership('239.1.2.6', 'bad'),
      addAllHosts: () => s.addMembership('224.0.0.1'),
      drop: () => s.dropMembership('239.1.2.3'),
      dropAgain: () => s.dropMembership('239.1.2.3'),
      dropNever: () => s.dropMembership('239.9.9.9'),
    };
    for (const [name, fn] of Object.entries(calls)) out[name] = outcome(fn);
    const max: string[] = [];
    for (let i = 0; i < 20; i++) max.push(outcome(() => s.addMembership(`239.2.0.${i}`)));
    out['up to igmp_max_memberships'] = max.join(' ');
    const t = await bound(env, 'client', 0);
    const ssm: Record<string, () => unknown> = {
      ssmAdd: () => t.addSourceSpecificMembership('10.0.0.9', '232.1.1.1'),
      ssmAddAgain: () => t.addSourceSpecificMembership('10.0.0.9', '232.1.1.1'),
      ssmAddSecond: () => t.addSourceSpecificMembership('10.0.0.8', '232.1.1.1'),
      asmOnSsmGroup: () => t.addMembership('232.1.1.1'),
      asmThenSsm: () => (t.addMembership('232.1.1.2'), t.addSourceSpecificMembership('10.0.0.9', '232.1.1.2')),
      ssmDropUnknownSource: () => t.dropSourceSpecificMembership('10.0.0.7', '232.1.1.1'),
      ssmDrop: () => t.dropSourceSpecificMembership('10.0.0.9', '232.1.1.1'),
      ssmDropLast: () => t.dropSourceSpecificMembership('10.0.0.8', '232.1.1.1'),
      ssmDropAfterLeave: () => t.dropSourceSpecificMembership('10.0.0.8', '232.1.1.1'),
      ssmBadSource: () => t.addSourceSpecificMembership('x', '232.1.1.1'),
      ssmUnicastGroup: () => t.addSourceSpecificMembership('10.0.0.1', '10.0.0.2'),
      ssmNumberSource: () => t.addSourceSpecificMembership(5 as unknown as string, '232.1.1.1'),
      ssmOtherInterface: () => t.addSourceSpecificMembership('10.0.0.1', '232.1.1.9', '10.9.9.9'),
    };
    for (const [name, fn] of Object.entries(ssm)) out[name] = outcome(fn);
    const msf: string[] = [];
    for (let i = 0; i < 11; i++) msf.push(outcome(() => t.addSourceSpecificMembership(`10.1.0.${i}`, '232.1.1.3')));
    out['up to igmp_max_msf'] = msf.join(' ');
    out['drop a source-specific group whole'] = outcome(() => t.dropMembership('232.1.1.3'));
    s.close();
    t.close();
    return out;
  },

  /**
   * Group delivery: to every socket on the port (joined or not: IP_MULTICAST_ALL), to one
   * bound to the group, not to one bound to the unicast address; none once the host left;
   * a source-specific member hears its source.
   */
  async multicastDelivery(env: CompatEnv): Promise<unknown> {
    const GROUP = '239.1.2.3';
    const a = await bound(env, 'server', 7300, undefined, true);
    const b = await bound(env, 'server', 7300, undefined, true);
    const d = await bound(env, 'server', 7300, GROUP, true);
    const e = await bound(env, 'server', 7300, env.serverAddress, true);
    const other = await bound(env, 'server', 7301, undefined, true);
    a.addMembership(GROUP);
    const got: string[] = [];
    for (const [name, s] of [['a', a], ['b', b], ['d', d], ['e', e], ['other', other]] as const) s.on('message', (m: Buffer) => got.push(`${name}:${m}`));
    await wait(50);
    const sender = await bound(env, 'client', 0, env.clientAddress);
    sender.setMulticastTTL(1);
    const rounds: Record<string, string[]> = {};
    sender.send('joined', 7300, GROUP);
    await wait(150);
    rounds.joined = got.splice(0).sort();
    a.dropMembership(GROUP);
    await wait(50);
    sender.send('left', 7300, GROUP);
    await wait(150);
    rounds.left = got.splice(0).sort();
    const ssm = await bound(env, 'server', 7302);
    ssm.addSourceSpecificMembership(env.clientAddress, '232.1.1.1');
    ssm.on('message', (m: Buffer, r) => got.push(`ssm:${m}:${r.address === env.clientAddress}`));
    await wait(50);
    sender.send('from the source', 7302, '232.1.1.1');
    await wait(150);
    rounds.sourceSpecific = got.splice(0);
    for (const s of [a, b, d, e, other, sender, ssm]) s.close();
    return rounds;
  },
};

export const scenarios = { ...basic, ...more };
