// TCP bulk both ways between the kernel and the stack on a TAP, with offloads on and off:
// the bytes arrive intact, and with offloads the kernel hands over super-frames and takes
// ours (the TAP's counters say so).
import { createHash } from 'node:crypto';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pattern } from '../fixtures/bulk-server.ts';
import { ROOT, withNamespace } from '../helpers/netns.ts';
import { canUseTap } from '../helpers/root.ts';

const it = canUseTap ? test : test.skip;
const LOADER = `file://${ROOT}/node_modules/tsx/dist/loader.mjs`;
const FIXTURE = path.join(ROOT, 'test/fixtures/bulk-server.ts');
const BYTES = 8 << 20;

// The kernel's side: node's own net (the kernel's TCP), pushing to 9 and pulling from 19.
const CLIENT = `
const net = require('net'), crypto = require('crypto');
const n = ${BYTES}, data = Buffer.allocUnsafe(n);
for (let i = 0; i < n; i++) data[i] = (i * 131) % 253;
const push = net.connect(9, '10.0.0.2', () => push.end(data));
push.resume();
push.on('close', () => {
  const h = crypto.createHash('sha256'); let got = 0;
  const pull = net.connect(19, '10.0.0.2');
  pull.on('data', (d) => { h.update(d); got += d.length; });
  pull.on('end', () => console.log('PULL bytes=' + got + ' sha256=' + h.digest('hex')));
});
setTimeout(() => { console.log('client timeout'); process.exit(1); }, 60000).unref();
`;

for (const mode of ['on', 'off'] as const) {
  it(`TCP bulk both ways with --offload ${mode}: intact, ${mode === 'on' ? 'in super-frames' : 'in MTU-sized frames'}`, async () => {
    await withNamespace(async (ns) => {
      const server = ns.spawn('node', ['--import', LOADER, FIXTURE, mode, String(BYTES)]);
      let out = '';
      server.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      server.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      for (let i = 0; i < 300 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, new RegExp(`ready offload ${mode}`));
      const client = await ns.exec('node', ['-e', CLIENT], 90_000);
      assert.is(client.code, 0, client.stdout + client.stderr);
      const expected = createHash('sha256').update(pattern(BYTES)).digest('hex');
      assert.match(client.stdout, `PULL bytes=${BYTES} sha256=${expected}`);
      assert.match(out, `SINK bytes=${BYTES} sha256=${expected}`);
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await exited;
      const stats = JSON.parse(out.trim().split('\n').pop()!) as { offload: { rxSuperFrames: number; txSuperFrames: number; rxPartialChecksum: number } };
      if (mode === 'on') {
        assert.ok(stats.offload.rxSuperFrames > 0, `super-frames in: ${stats.offload.rxSuperFrames}`);
        assert.ok(stats.offload.txSuperFrames > 0, `super-frames out: ${stats.offload.txSuperFrames}`);
      } else {
        assert.is(stats.offload.rxSuperFrames + stats.offload.txSuperFrames + stats.offload.rxPartialChecksum, 0);
      }
    }, 'tso');
  });
}

test.run();
