// Replaying a recorded connection's client side against a live peer with another ISN
// (src/craft/replay.ts, as tcpliveplay): the pcap is recorded between two stacks by the
// existing CapturingLink and PcapWriter, read back by readPcap, and replayed by the wire
// against a fresh server stack: that server receives the same bytes, and answers the same.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dissect, farSide, readPcap, replay } from '../../src/craft/index.ts';
import { CapturingLink, createLinkPair, createStack, PcapWriter, type Stack, VirtualClock } from '../../src/index.ts';
import type { Socket } from '../../src/tcp/socket.ts';

/** A server that greets, answers each chunk with its length, and closes after "bye". */
function serve(s: Stack, received: Buffer[]): void {
  s.createServer((sock: Socket) => {
    sock.write('welcome\n');
    sock.on('data', (d: Buffer) => {
      received.push(d);
      sock.write(`got ${d.length}\n`);
      if (Buffer.concat(received).toString().endsWith('bye')) sock.end();
    });
    sock.on('error', () => {});
  }).listen(7000);
}

async function runFor(clock: VirtualClock, ms: number, done: () => boolean): Promise<void> {
  for (let t = 0; t < ms && !done(); t++) {
    clock.advance(1);
    await new Promise((r) => setImmediate(r));
  }
}

async function recordConnection(): Promise<{ pcap: Buffer; serverGot: string; clientGot: string }> {
  const clock = new VirtualClock();
  const [la, lb] = createLinkPair(clock, { latencyMs: 1 });
  const chunks: Buffer[] = [];
  const writer = new PcapWriter({ write: (b, off, len) => void chunks.push(Buffer.from(b.subarray(off, off + len))), close: () => {} });
  const client = await createStack({ link: new CapturingLink(la, writer, () => 1_700_000_000_000 + clock.now()), clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1 });
  const server = await createStack({ link: lb, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 2 });
  const serverGot: Buffer[] = [];
  serve(server, serverGot);
  clock.advance(10);
  const clientGot: Buffer[] = [];
  let closed = false;
  const sock = client.connect({ host: '10.0.0.2', port: 7000 });
  sock.on('data', (d: Buffer) => {
    clientGot.push(d);
    const text = Buffer.concat(clientGot).toString();
    if (text === 'welcome\n') sock.write('hello, ');
    else if (text === 'welcome\ngot 7\n') sock.write('world; bye');
  });
  sock.on('end', () => sock.end());
  sock.on('close', () => (closed = true));
  sock.on('error', () => {});
  await runFor(clock, 5000, () => closed);
  assert.ok(closed, 'the recorded connection closed');
  await runFor(clock, 200, () => false);
  await client.close();
  await server.close();
  writer.close();
  return { pcap: Buffer.concat(chunks), serverGot: Buffer.concat(serverGot).toString(), clientGot: Buffer.concat(clientGot).toString() };
}

test('the client side of a recorded connection, replayed against a server with another ISN: same bytes in, same bytes back', async () => {
  const recorded = await recordConnection();
  assert.is(recorded.serverGot, 'hello, world; bye');
  const records = readPcap(recorded.pcap);
  assert.ok(records.length > 8);

  const clock = new VirtualClock(50_000);
  const [link] = createLinkPair(clock);
  const fresh = await createStack({ link, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 99 });
  const got: Buffer[] = [];
  serve(fresh, got);
  const wire = farSide(fresh, { ip: '10.0.0.1', mac: '02:00:00:00:00:01' });
  const report = await replay(wire, records, { localIsn: 123_456, timeoutMs: 2000 });

  assert.equal(report.timeouts, []);
  assert.ok(report.peerIsn !== null && report.peerIsn !== report.recordedPeerIsn, 'the fresh server chose another ISN');
  assert.is(Buffer.concat(got).toString(), recorded.serverGot);
  assert.is(report.peerData.toString(), recorded.clientGot);
  // Our SEQ started at the chosen ISN; every ACK we sent was for the new server's numbers.
  const ours = wire.sent.map((f) => dissect(f)).filter((f) => f.tcp !== undefined);
  assert.is(ours[0]!.tcp!.seq, 123_456);
  for (const f of ours.slice(1)) if (f.tcp!.flagText.includes('A')) assert.ok(((f.tcp!.ack - report.peerIsn!) >>> 0) < 1000);
  await fresh.close();
});

test('readPcap reads microsecond captures of either byte order and leaves out a cut-off record', () => {
  const frame = Buffer.from('0123456789abcdef');
  for (const little of [true, false]) {
    const h = Buffer.alloc(24);
    const w32 = (b: Buffer, v: number, at: number) => (little ? b.writeUInt32LE(v, at) : b.writeUInt32BE(v, at));
    w32(h, 0xa1b2c3d4, 0);
    w32(h, 1, 20);
    const r = Buffer.alloc(16);
    w32(r, 10, 0);
    w32(r, 500_000, 4);
    w32(r, frame.length, 8);
    w32(r, frame.length, 12);
    const records = readPcap(Buffer.concat([h, r, frame, r, frame.subarray(0, 5)]));
    assert.is(records.length, 1);
    assert.is(records[0]!.epochMs, 10_500);
    assert.equal(records[0]!.frame, frame);
  }
});

test.run();
