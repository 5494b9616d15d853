// The README's compatibility table (section "Compatibility with Node's net and dgram") must
// name every public member of Node's net.Socket, net.Server and dgram.Socket and of the net
// and dgram modules, and every row that says "yes" or "partly" must exist on tapstack's
// class or module. So the table cannot fall behind Node or the code.
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLinkPair } from '../../src/link/memory.ts';
import { createStack } from '../../src/stack.ts';
import type { Server as TcpServer } from '../../src/tcp/server.ts';
import type { Socket as TcpSocket } from '../../src/tcp/socket.ts';
import type { UdpSocket } from '../../src/udp/socket.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { ROOT } from '../helpers/netns.ts';

const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const start = readme.indexOf("## Compatibility with Node's net and dgram");
const section = start < 0 ? '' : readme.slice(start, readme.indexOf('\n## ', start + 10));

/** Rows "| `Owner.member` | yes/partly/no | ... |". */
const rows = new Map<string, string>();
for (const m of section.matchAll(/^\| `([A-Za-z]+)\.([A-Za-z0-9]+)(?:\(\))?` \| (yes|partly|no) \|/gm)) rows.set(`${m[1]}.${m[2]}`, m[3]!);

function publicMembers(proto: object): string[] {
  return Object.getOwnPropertyNames(proto).filter((n) => n !== 'constructor' && !n.startsWith('_'));
}

test('the section exists', () => {
  assert.ok(section.length > 0, "README has no section \"Compatibility with Node's net and dgram\"");
});

const owners: [string, string[], (member: string) => boolean][] = [];

test('every member of Node 20 is in the table, and what it claims exists', async () => {
  const clock = new VirtualClock();
  const [link] = createLinkPair(clock);
  const stack = await createStack({ clock, link, ip: '10.0.0.1/24', seed: 1 });
  // Instances, so that fields count as well as the prototype's members.
  const socket: TcpSocket = stack.connect({ port: 9, host: '10.0.0.2' });
  socket.on('error', () => {});
  const server: TcpServer = stack.createServer();
  const udp: UdpSocket = stack.createSocket('udp4');
  const stackNet = (stack as unknown as { net?: Record<string, unknown> }).net ?? {};
  const stackDgram = (stack as unknown as { dgram?: Record<string, unknown> }).dgram ?? {};
  owners.push(
    ['Socket', publicMembers(net.Socket.prototype), (m) => m in socket],
    ['Server', publicMembers(net.Server.prototype), (m) => m in server],
    ['DgramSocket', publicMembers(dgram.Socket.prototype), (m) => m in udp],
    ['net', Object.keys(net).filter((k) => !k.startsWith('_')), (m) => m in stackNet],
    ['dgram', Object.keys(dgram).filter((k) => !k.startsWith('_')), (m) => m in stackDgram],
  );
  const missing: string[] = [];
  const wrong: string[] = [];
  for (const [owner, members, exists] of owners)
    for (const m of members) {
      const claim = rows.get(`${owner}.${m}`);
      if (claim === undefined) missing.push(`${owner}.${m}`);
      else if (claim !== 'no' && !exists(m)) wrong.push(`${owner}.${m} (${claim})`);
    }
  socket.destroy();
  udp.close();
  await stack.close();
  assert.equal(missing, [], `not in the table: ${missing.join(', ')}`);
  assert.equal(wrong, [], `the table says supported, tapstack has none: ${wrong.join(', ')}`);
});

test.run();
