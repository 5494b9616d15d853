// The CLI on a TAP in a private namespace, pinged by the kernel.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canUseTap } from '../helpers/root.ts';
import { withNamespace } from '../helpers/netns.ts';

const it = canUseTap ? test : test.skip;

it('ping -c 20 has 0% loss and the kernel learns our MAC', async () => {
  await withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0']);
    const mac = /mac ([0-9a-f:]{17})/.exec(stack.stdout)![1]!;
    const r = await ns.exec('ping', ['-c', '20', '-i', '0.01', '-W', '1', '10.0.0.2'], 30_000);
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, / 0% packet loss/);
    const neigh = await ns.exec('ip', ['neigh', 'show', '10.0.0.2', 'dev', 'tap0']);
    assert.ok(neigh.stdout.includes(mac), neigh.stdout);
    const exit = await stack.stop();
    assert.is(exit.code, 0);
  });
});

test.run();
