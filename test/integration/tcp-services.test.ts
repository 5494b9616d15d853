// The stack's TCP services against the Linux kernel's clients (nc, curl), in a private
// namespace: echo, discard, chargen, the HTTP endpoints, and a closed port refused at once.
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canUseTap } from '../helpers/root.ts';
import { patternSha256, sha256File, withStack, withTempDir } from '../helpers/tcp-ns.ts';

const it = canUseTap ? test : test.skip;

/** Printable text, so it survives the trip through the command's stdout unchanged. */
function text(bytes: number): string {
  const line = 'the quick brown fox jumps over the lazy dog 0123456789\n';
  return line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes);
}

it('nc: echo (7) returns what it is sent and closes after nc half-closes', async () => {
  await withStack(async (ns) => {
    for (const size of [1, 1460, 200_000]) {
      const input = text(size);
      const r = await ns.exec('nc', ['-N', '-w', '10', '10.0.0.2', '7'], 30_000, input);
      assert.is(r.code, 0, r.stderr);
      assert.is(r.stdout.length, input.length);
      assert.ok(r.stdout === input, `echo of ${size} bytes differs`);
    }
  });
});

it('nc: discard (9) takes everything and answers nothing', async () => {
  await withStack(async (ns) => {
    const r = await ns.exec('nc', ['-N', '-w', '10', '10.0.0.2', '9'], 30_000, text(1_000_000));
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, '');
  });
});

it('nc: chargen (19) sends the RFC 864 pattern until the client goes away', async () => {
  await withStack(async (ns) => {
    // head takes 1,000 lines and exits; nc then dies writing to the closed pipe, so the
    // kernel resets the connection while the stack is still sending.
    const r = await ns.exec('sh', ['-c', 'nc -w 10 10.0.0.2 19 </dev/null | head -c 74000'], 30_000);
    assert.is(r.code, 0, r.stderr);
    const printable = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');
    const lines = r.stdout.split('\r\n');
    assert.is(lines.length, 1_001);
    for (let k = 0; k < 1_000; k++) assert.is(lines[k], (printable + printable).slice(k % 95, (k % 95) + 72), `line ${k}`);
    // The stack survives the reset and still serves.
    const again = await ns.exec('nc', ['-N', '-w', '10', '10.0.0.2', '7'], 15_000, 'still here\n');
    assert.is(again.stdout, 'still here\n');
  });
});

it('nc: chargen with --chargen-bytes sends exactly that much of the pattern, then closes', async () => {
  await withStack(
    async (ns) => {
      const r = await ns.exec('nc', ['-w', '10', '10.0.0.2', '19'], 20_000);
      assert.is(r.code, 0, r.stderr);
      assert.is(r.stdout.length, 100_000);
      const printable = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');
      const lines = r.stdout.split('\r\n');
      for (let k = 0; k < lines.length - 1; k++) assert.is(lines[k], (printable + printable).slice(k % 95, (k % 95) + 72), `line ${k}`);
    },
    ['--chargen-bytes', '100000'],
  );
});

it('curl: GET /, GET /bytes/N, POST /sha256, GET /stats, 404', async () => {
  await withStack(async (ns) => {
    await withTempDir(async (dir) => {
      const page = await ns.exec('curl', ['-sS', '--max-time', '10', '-w', '\n%{http_code} %{content_type}', 'http://10.0.0.2/'], 15_000);
      assert.is(page.code, 0, page.stderr);
      assert.match(page.stdout, /<table/);
      assert.match(page.stdout, /<td>ethernet<\/td>/);
      assert.match(page.stdout, /\n200 text\/html/);

      for (const n of [0, 1, 251, 1_000_003]) {
        const out = path.join(dir, `bytes-${n}`);
        const r = await ns.exec('curl', ['-sS', '--max-time', '30', '-o', out, `http://10.0.0.2/bytes/${n}`], 40_000);
        assert.is(r.code, 0, r.stderr);
        const got = await sha256File(out);
        assert.is(got.bytes, n);
        assert.is(got.sha256, patternSha256(n), `/bytes/${n}`);
      }

      const body = randomBytes(5_000_000);
      const bodyFile = path.join(dir, 'body');
      await writeFile(bodyFile, body);
      const post = await ns.exec('curl', ['-sS', '--max-time', '30', '--data-binary', `@${bodyFile}`, 'http://10.0.0.2/sha256'], 40_000);
      assert.is(post.code, 0, post.stderr);
      assert.is(post.stdout, createHash('sha256').update(body).digest('hex'));

      const stats = await ns.exec('curl', ['-sS', '--max-time', '10', 'http://10.0.0.2/stats'], 15_000);
      const counters = JSON.parse(stats.stdout) as Record<string, { rx: number; tx: number }>;
      assert.ok(counters.ethernet!.rx > 100 && counters.ethernet!.tx > 100, stats.stdout);
      assert.ok(counters.ipv4!.rx > 100, stats.stdout);

      // Two requests on one kept-alive connection: Node's http server keeps our socket open.
      const twice = await ns.exec('curl', ['-sS', '-v', '--max-time', '10', '-o', '/dev/null', '-o', '/dev/null', 'http://10.0.0.2/bytes/100000', 'http://10.0.0.2/stats'], 15_000);
      assert.is(twice.code, 0, twice.stderr);
      assert.match(twice.stderr, /Re-using existing connection/);

      const missing = await ns.exec('curl', ['-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', 'http://10.0.0.2/nothing-here'], 15_000);
      assert.is(missing.stdout, '404');
    });
  });
});

it('a closed port is refused at once: the stack answers the SYN with a RST', async () => {
  await withStack(async (ns) => {
    // Without a RST the kernel would retry its SYN until the 5 s limit: curl's exit code
    // would be 28 (timeout) instead of 7 (connection refused).
    const curl = await ns.exec('curl', ['-sS', '--connect-timeout', '5', 'http://10.0.0.2:81/'], 15_000);
    assert.is(curl.code, 7, curl.stderr);
    assert.match(curl.stderr, /Connection refused|Couldn't connect/);
    const nc = await ns.exec('nc', ['-v', '-w', '5', '10.0.0.2', '4242'], 15_000);
    assert.is(nc.code, 1);
    assert.match(nc.stderr, /Connection refused/);
  });
});

test.run();
