// src/craft over a TAP against the Linux kernel, in a namespace the test makes and deletes:
// a crafted SYN to a kernel listener, the kernel's SYN-ACK awaited, the ACK and data sent and
// read by the listener, then a RST that resets the kernel's socket. The kernel ARPs for the
// wire's address; the wire answers as the far side.
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canUseTap } from '../helpers/root.ts';
import { ROOT, withNamespace } from '../helpers/netns.ts';

const it = canUseTap ? test : test.skip;
const LOADER = `file://${ROOT}/node_modules/tsx/dist/loader.mjs`;
const FIXTURE = path.join(ROOT, 'test/fixtures/craft-tap.ts');

it('a crafted handshake, data and RST with the Linux TCP through a TAP', async () => {
  await withNamespace(async (ns) => {
    const r = await ns.exec('node', ['--import', LOADER, FIXTURE], 60_000);
    assert.is(r.code, 0, r.stdout + r.stderr);
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    assert.is(result.error, undefined, String(result.error));
    assert.match(String(result.synAck), /10\.0\.0\.1\.7777 > 10\.0\.0\.2\.40000: Flags \[S\.\]/);
    assert.is(result.synAckAck, 1001);
    assert.match(String(result.ackOfData), /Flags \[\.\]/);
    assert.is(result.delivered, 'hello from a crafted segment');
    assert.is(result.serverError, 'ECONNRESET');
    assert.is(result.kernelAskedArp, true);
    assert.is(result.wireAnsweredArp, true);
  }, 'craft');
});

test.run();
