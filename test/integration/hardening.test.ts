// Issue 10's attacks from the kernel's side of the TAP, with scapy (Debian's python3-scapy):
// a LAND SYN and a self-addressed UDP echo each make the stack send fewer than 50 frames;
// slow HTTP clients are cut off at the configured timeout; scapy's fuzz() frames of every
// layer leave ping at 0% loss, with no internal error.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Namespace, withNamespace } from '../helpers/netns.ts';
import { canUseTap } from '../helpers/root.ts';
import { assertAnswering, stopWithStats } from '../helpers/stack-checks.ts';

const it = canUseTap ? test : test.skip;
const STACK_MAC = '02:00:00:00:aa:02';
/** Debian's Python, which has python3-scapy (not whatever python3 comes first on PATH). */
const PYTHON = '/usr/bin/python3';

async function scapy(ns: Namespace, program: string, timeoutMs = 60_000): Promise<string> {
  const r = await ns.exec(PYTHON, ['-c', `import logging\nlogging.getLogger("scapy.runtime").setLevel(logging.ERROR)\nfrom scapy.all import *\n${program}`], timeoutMs);
  assert.is(r.code, 0, `scapy: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

it('item 1 and 2: a LAND SYN and a self-addressed UDP echo make the stack send fewer than 50 frames', async () => {
  await withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0', '--mac', STACK_MAC, '--services', 'echo,discard,chargen,http', '--stats-on-exit']);
    await assertAnswering(ns, stack, 'before', 5);
    await scapy(
      ns,
      `sendp(Ether(dst="${STACK_MAC}")/IP(src="10.0.0.2", dst="10.0.0.2")/TCP(sport=80, dport=80, flags="S", seq=1000), iface="tap0", verbose=0)
sendp(Ether(dst="${STACK_MAC}")/IP(src="10.0.0.2", dst="10.0.0.2")/UDP(sport=7, dport=7)/Raw(b"loop"), iface="tap0", verbose=0)`,
    );
    await sleep(2000);
    await assertAnswering(ns, stack, 'after the loops');
    const stats = await stopWithStats(stack);
    // Ping is ICMP: whatever TCP and UDP sent, the two frames made them send.
    const sent = stats.tcp!.tx + stats.udp!.tx;
    assert.ok(sent < 50, `TCP and UDP sent ${sent} frames after a LAND SYN and a self-addressed echo: ${JSON.stringify(stats)}`);
    const martians = Object.entries(stats.ipv4!.drops).filter(([reason]) => reason.includes('martian')).reduce((n, [, c]) => n + c, 0);
    assert.ok(martians >= 2, `both dropped as martians: ${JSON.stringify(stats.ipv4!.drops)}`);
  });
});

it('item 7: a slow HTTP client (half a request line) is cut off at the configured headers timeout', async () => {
  await withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0', '--mac', STACK_MAC, '--services', 'http', '--http-headers-timeout', '1000', '--stats-on-exit']);
    await assertAnswering(ns, stack, 'before', 5);
    // A client that sends half a request line and waits: how long until the server closes?
    const out = await scapy(
      ns,
      `import socket, time
s = socket.create_connection(("10.0.0.2", 80), timeout=30)
s.sendall(b"GET / HT")
start = time.monotonic()
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(round(time.monotonic() - start, 2), data.split(b"\\r\\n")[0].decode())`,
    );
    const [secondsText, ...status] = out.trim().split(' ');
    const seconds = Number(secondsText);
    assert.ok(seconds >= 0.9 && seconds < 10, `cut off after ${seconds} s (headers timeout 1 s): ${out}`);
    assert.match(status.join(' '), /408/, `Node's answer to a request that timed out: ${out}`);
    await assertAnswering(ns, stack, 'after the slow client');
    await stopWithStats(stack);
  });
});

it("malformed frames of every layer from scapy's fuzz() leave ping at 0% loss", async () => {
  await withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0', '--mac', STACK_MAC, '--services', 'echo,discard,chargen,http', '--stats-on-exit']);
    await assertAnswering(ns, stack, 'before', 5);
    // fuzz() fills every field left unset with a random value; the frames are seeded.
    await scapy(
      ns,
      `random.seed(10)
mac = "${STACK_MAC}"
frames = []
for i in range(300):
    frames.append(Ether(dst=mac)/fuzz(IP(dst="10.0.0.2", src="10.0.0.1")/TCP()))
    frames.append(Ether(dst=mac)/fuzz(IP(dst="10.0.0.2", src="10.0.0.1")/UDP()/Raw(RandString(64))))
    frames.append(Ether(dst=mac)/fuzz(IP(dst="10.0.0.2", src="10.0.0.1")/ICMP()))
    frames.append(Ether(dst=mac)/IP(dst="10.0.0.2", src="10.0.0.1")/fuzz(TCP(dport=80)))
    frames.append(Ether(dst=mac)/IP(dst="10.0.0.2", src="10.0.0.1", flags="MF", frag=i % 64)/fuzz(UDP()))
    frames.append(Ether(dst="ff:ff:ff:ff:ff:ff")/fuzz(ARP(pdst="10.0.0.2")))
sendp(frames, iface="tap0", verbose=0, inter=0.0005)`,
      120_000,
    );
    await assertAnswering(ns, stack, 'after fuzz()');
    const stats = await stopWithStats(stack);
    const dropped = Object.values(stats).reduce((n, c) => n + Object.values(c.drops).reduce((a, b) => a + b, 0), 0);
    assert.ok(dropped > 100, `the fuzzed frames were dropped by reason: ${JSON.stringify(stats)}`);
  });
});

test.run();
