// Multicast between tapstack on a TAP and the kernel, in a private namespace: the stack's
// IGMP reports reach a snooping bridge (the kernel's switch) that records the membership on
// the TAP's port, a datagram a kernel socket sends to the group reaches the tapstack socket
// that joined it, and after the drop the group's frames are filtered. And ref/unref: a
// process whose only socket is unref'd exits by itself, as Node's does.
import { once } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Namespace, withNamespace } from '../helpers/netns.ts';
import { canUseTap } from '../helpers/root.ts';
import { tsArgs } from '../helpers/tcp-ns.ts';

const it = canUseTap ? test : test.skip;
const GROUP = '239.5.5.5';
const FIXTURE = 'test/fixtures/dgram-multicast.ts';

/** Collects a child's stdout; waitFor resolves once a line matches. */
function watch(child: ReturnType<Namespace['spawn']>) {
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return {
    get text() {
      return out;
    },
    async waitFor(pattern: RegExp, ms: number): Promise<void> {
      const start = Date.now();
      while (!pattern.test(out)) {
        if (Date.now() - start > ms) throw new Error(`timed out waiting for ${pattern}: ${out}`);
        if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}): ${out}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

async function sh(ns: Namespace, ...args: string[]): Promise<string> {
  const r = await ns.exec(args[0]!, args.slice(1), 10_000);
  assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A kernel socket in the namespace sends one datagram to the group out of 10.0.0.1. */
async function kernelSend(ns: Namespace, text: string): Promise<void> {
  const script = `const s = require('node:dgram').createSocket('udp4');
s.bind(0, '10.0.0.1', () => { s.setMulticastInterface('10.0.0.1'); s.send(${JSON.stringify(text)}, 5400, '${GROUP}', (e) => { if (e) throw e; s.close(); }); });`;
  await sh(ns, process.execPath, '-e', script);
}

async function mdb(ns: Namespace): Promise<string> {
  return sh(ns, 'bridge', 'mdb', 'show', 'dev', 'br0');
}

async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it('IGMP: a snooping bridge learns the group on the TAP port; a kernel datagram to the group arrives; after the drop it is filtered', async () => {
  await withNamespace(async (ns) => {
    const child = ns.spawn(process.execPath, tsArgs(FIXTURE));
    const out = watch(child);
    await out.waitFor(/^ready$/m, 20_000);
    // The TAP into a bridge that snoops IGMP (v3) and queries, the host address on the bridge.
    await sh(ns, 'ip', 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '1', 'mcast_querier', '1', 'mcast_igmp_version', '3');
    await sh(ns, 'ip', 'addr', 'flush', 'dev', 'tap0');
    await sh(ns, 'ip', 'link', 'set', 'tap0', 'master', 'br0');
    await sh(ns, 'ip', 'addr', 'add', '10.0.0.1/24', 'dev', 'br0');
    await sh(ns, 'ip', 'link', 'set', 'br0', 'up');
    child.stdin!.write(`join ${GROUP}\n`);
    await out.waitFor(/^joined$/m, 5_000);
    await until(async () => (await mdb(ns)).includes(GROUP), 10_000, 'the bridge records the group');
    assert.match(await mdb(ns), new RegExp(`port tap0 grp ${GROUP.replace(/\./g, '\\.')}`));
    await kernelSend(ns, 'hello group');
    await out.waitFor(/^MESSAGE hello group 10\.0\.0\.1$/m, 5_000);
    child.stdin!.write(`drop ${GROUP}\n`);
    await out.waitFor(/^dropped$/m, 5_000);
    // The leave (TO_IN {}), then the bridge's group-specific queries go unanswered.
    await until(async () => !(await mdb(ns)).includes(GROUP), 15_000, 'the bridge forgets the group');
    await kernelSend(ns, 'after the drop');
    await new Promise((r) => setTimeout(r, 300));
    child.stdin!.write('exit\n');
    await once(child, 'exit');
    assert.not.match(out.text, /after the drop/);
    const counters = JSON.parse(out.text.trim().split('\n').pop()!) as Record<string, { rx: number; tx: number; drops: Record<string, number> }>;
    assert.ok(counters.igmp!.tx >= 3, JSON.stringify(counters.igmp));
    assert.ok(counters.igmp!.rx >= 1, `the bridge's queries heard: ${JSON.stringify(counters.igmp)}`);
    assert.ok((counters.ethernet!.drops['eth-multicast-filtered'] ?? 0) >= 1, JSON.stringify(counters.ethernet));
  }, 'mcast');
});

/** Does the program exit by itself within ms? Else it is killed. */
async function exitsAlone(ns: Namespace, args: string[], ms: number): Promise<boolean> {
  const child = ns.spawn(process.execPath, args);
  const exited = once(child, 'exit').then(() => true);
  const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), ms));
  const alone = await Promise.race([exited, timeout]);
  if (!alone && child.pid !== undefined) child.kill('SIGKILL');
  return alone;
}

it('ref/unref: a bound socket keeps the process alive, an unref\'d one lets it exit, on Node and on tapstack', async () => {
  await withNamespace(async (ns) => {
    const node = (unref: boolean) => [
      '-e',
      `const s = require('node:dgram').createSocket('udp4'); s.bind(5400, () => { ${unref ? 's.unref();' : ''} });`,
    ];
    const result = {
      node: { ref: await exitsAlone(ns, node(false), 3000), unref: await exitsAlone(ns, node(true), 3000) },
      tapstack: { ref: await exitsAlone(ns, tsArgs(FIXTURE, ['ref']), 6000), unref: await exitsAlone(ns, tsArgs(FIXTURE, ['unref']), 6000) },
    };
    assert.equal(result.tapstack, result.node);
    assert.equal(result.node, { ref: false, unref: true });
  }, 'ref');
});

test.run();
