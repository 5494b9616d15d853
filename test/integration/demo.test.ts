// The README's main command: the demo makes and removes its own namespace, and shows the stack
// answering ping, TCP and UDP.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canUseTap } from '../helpers/root.ts';
import { ROOT, run } from '../helpers/netns.ts';

const it = canUseTap ? test : test.skip;

it('npm run demo pings, fetches over TCP, echoes over UDP, and removes its namespace', async () => {
  const r = await run('npm', ['--prefix', ROOT, 'run', 'demo'], 90_000);
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^tapstack up dev tap0 /m);
  assert.match(r.stdout, /5 packets transmitted, 5 received, 0% packet loss/);
  assert.match(r.stdout, /2 packets transmitted, 2 received, 0% packet loss/);
  assert.match(r.stdout, /HTTP 200, 100000 bytes/);
  assert.match(r.stdout, /^hello over UDP$/m);
  const ns = /created network namespace (\S+)/.exec(r.stdout)?.[1];
  assert.ok(ns, r.stdout);
  const list = await run('ip', ['netns', 'list']);
  assert.not.ok(list.stdout.includes(ns!), `namespace ${ns} left behind`);
});

test.run();
