// The command line in a private namespace: argument errors, signals, TAP lifetime, and
// --no-host-config.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canUseTap } from '../helpers/root.ts';
import { type Namespace, TAPSTACK, withNamespace } from '../helpers/netns.ts';

const it = canUseTap ? test : test.skip;

it('a bad argument gives a one-line error naming it and exit 2', async () => {
  await withNamespace(async (ns) => {
    const cases: [string[], string][] = [
      [['--ip', '300.1.2.3/24'], '--ip'],
      [['--ip', '10.0.0.2/33'], '--ip'],
      [['--host-ip', 'nope'], '--host-ip'],
      [['--gateway', '1.2.3'], '--gateway'],
      [['--mac', '01:00:5e:00:00:01'], '--mac'],
      [['--mac', 'zz'], '--mac'],
      [['--mtu', '100'], '--mtu'],
      [['--mtu', 'big'], '--mtu'],
      [['--tap', 'a-name-that-is-far-too-long'], '--tap'],
      [['--tap'], '--tap'],
      [['--services', 'telnet'], '--services'],
      [['--bogus'], '--bogus'],
      [['--no-host-config=yes'], '--no-host-config'],
      [['--host-ip', '10.0.0.2/24'], 'hostIp'],
      [['--gateway', '192.168.7.1'], 'gateway 192.168.7.1'],
    ];
    for (const [args, name] of cases) {
      const r = await ns.exec(TAPSTACK, args, 20_000);
      assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.is(lines.length, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(lines[0]!.startsWith('tapstack: ') && lines[0]!.includes(name), r.stderr);
      assert.is(r.stdout, '');
    }
  });
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  it(`${signal} closes cleanly with exit 0, and the TAP it created disappears`, async () => {
    await withNamespace(async (ns) => {
      const stack = await ns.startStack(['--tap', 'tap0', '--stats-on-exit']);
      assert.is((await ns.exec('ip', ['link', 'show', 'tap0'])).code, 0);
      stack.child.kill(signal);
      const exit = await stack.exited;
      assert.equal(exit, { code: 0, signal: null });
      assert.match(stack.stdout, /"ethernet":/, 'counters printed on the way out');
      assert.is(stack.stderr, '');
      const show = await ns.exec('ip', ['link', 'show', 'tap0']);
      assert.is.not(show.code, 0, 'the TAP we created is gone');
    });
  });
}

it('a pre-existing TAP is attached to, used, and left in place on exit', async () => {
  await withNamespace(async (ns) => {
    assert.is((await ns.exec('ip', ['tuntap', 'add', 'dev', 'tapx', 'mode', 'tap'])).code, 0);
    const stack = await ns.startStack(['--tap', 'tapx']);
    const r = await ns.exec('ping', ['-c', '3', '-i', '0.05', '-W', '1', '10.0.0.2']);
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.is((await stack.stop()).code, 0);
    const show = await ns.exec('ip', ['link', 'show', 'tapx']);
    assert.is(show.code, 0, 'still there');
  });
});

it('--no-host-config leaves the kernel\'s end of the TAP down and without an address', async () => {
  await withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0', '--no-host-config']);
    const link = await ns.exec('ip', ['-o', 'link', 'show', 'tap0']);
    assert.is(link.code, 0);
    assert.not.match(link.stdout, /[<,]UP[,>]/, link.stdout);
    const addr = await ns.exec('ip', ['-o', '-4', 'addr', 'show', 'dev', 'tap0']);
    assert.is(addr.stdout.trim(), '');
    // Configured by hand, it answers.
    await ns.exec('ip', ['addr', 'add', '10.0.0.1/24', 'dev', 'tap0']);
    await ns.exec('ip', ['link', 'set', 'tap0', 'up']);
    const r = await ns.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', '10.0.0.2']);
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.is((await stack.stop()).code, 0);
  });
});

it('without CAP_NET_ADMIN: a clear one-line message, no stack trace', async () => {
  await withNamespace(async (ns) => {
    // Root without capabilities (an empty bounding set): the checkout stays readable wherever it
    // was cloned, while creating the TAP is refused as it is for an unprivileged user.
    const r = await ns.exec('setpriv', ['--inh-caps=-all', '--bounding-set=-all', TAPSTACK, '--tap', 'tap0'], 20_000);
    assert.is.not(r.code, 0);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^tapstack: .*(permission denied|CAP_NET_ADMIN)/i);
    assert.not.match(r.stderr, /\n\s+at /);
  });
});

it('a failing test still deletes its namespace and ends the stack it started', async () => {
  let seen: Namespace | null = null;
  let pid: number | undefined;
  await withNamespace(async (ns) => {
    seen = ns;
    pid = (await ns.startStack(['--tap', 'tap0'])).child.pid;
    throw new Error('deliberate failure');
  }).then(
    () => assert.unreachable('the error must come through'),
    (err: Error) => assert.is(err.message, 'deliberate failure'),
  );
  assert.ok(seen);
  assert.is(await (seen as Namespace).exists(), false);
  assert.ok(pid !== undefined);
  await new Promise((r) => setTimeout(r, 200));
  assert.throws(() => process.kill(pid!, 0), 'the stack process is gone');
});

test.run();
