// examples/mqtt.ts against a real broker: mosquitto runs inside a namespace of the test's on
// the host's side of the TAP (10.0.0.1:1883); the example's MQTT client on the stack
// (10.0.0.2) gets its own message back through the broker, and exchanges one message each way
// with the kernel's mosquitto_sub and mosquitto_pub. Bytes are compared by SHA-256; the
// client disconnects cleanly (its connection closes without error and without a reset).

import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256 } from '../../examples/common.ts';
import { hasMosquitto, startMosquitto } from '../helpers/mosquitto.ts';
import { StackProcess, withNamespace } from '../helpers/netns.ts';
import { canUseTap } from '../helpers/root.ts';
import { tsArgs, withTempDir } from '../helpers/tcp-ns.ts';

const it = canUseTap ? test : test.skip;

it('mqtt client on the stack with mosquitto on the host side of the TAP', async () => {
  assert.ok(hasMosquitto(), 'mosquitto is missing: scripts/install-deps.sh installs mosquitto and mosquitto-clients');
  await withNamespace(async (ns) => {
    await withTempDir(async (dir) => {
      // The broker binds 10.0.0.1 before the TAP (made by the example) carries it.
      const sysctl = await ns.exec('sysctl', ['-w', 'net.ipv4.ip_nonlocal_bind=1']);
      assert.is(sysctl.code, 0, sysctl.stderr);
      const broker = await startMosquitto(ns, dir);
      try {
        const fromStack = randomBytes(50_000);
        const toStack = randomBytes(70_000);
        await writeFile(path.join(dir, 'from-stack'), fromStack);
        await writeFile(path.join(dir, 'to-stack'), toStack);
        const example = new StackProcess(
          ns.spawn(process.execPath, tsArgs('examples/mqtt.ts', ['--tap', 'tap0', '--send', path.join(dir, 'from-stack'), '--wait-ms', '20000', 'mqtt://10.0.0.1:1883'])),
        );
        await example.waitFor(/^ready$/m, 30_000);
        assert.match(example.stdout, /^echo bytes=100000 sha256=[0-9a-f]{64} ok$/m);

        // The stack to the kernel: the retained message, as hex so that every byte shows.
        const sub = await ns.exec('mosquitto_sub', ['-h', '10.0.0.1', '-t', 'tapstack/from-stack', '-C', '1', '-W', '10', '-F', '%x'], 15_000);
        assert.is(sub.code, 0, sub.stderr);
        assert.is(sha256(Buffer.from(sub.stdout.trim(), 'hex')), sha256(fromStack));

        // The kernel to the stack.
        const pub = await ns.exec('mosquitto_pub', ['-h', '10.0.0.1', '-t', 'tapstack/to-stack', '-q', '1', '-f', path.join(dir, 'to-stack')], 15_000);
        assert.is(pub.code, 0, pub.stderr);

        const exit = await Promise.race([example.exited, new Promise<null>((r) => setTimeout(r, 30_000, null))]);
        assert.ok(exit, `example still running: ${example.stdout}`);
        assert.is(exit.code, 0, example.stdout + example.stderr);
        assert.match(example.stdout, `received topic=tapstack/to-stack bytes=${toStack.length} sha256=${sha256(toStack)}\n`);
        assert.match(example.stdout, 'closed hadError=false resets=0\n');
      } finally {
        const stopped = await broker.stop();
        assert.is(stopped.code, 0, `mosquitto: ${broker.stdout}${broker.stderr}`);
      }
    });
  }, 'mqtt');
});

test.run();
