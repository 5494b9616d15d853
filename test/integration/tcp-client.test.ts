// The stack as a client: examples/fetch.ts brings a stack up on the TAP and fetches a file
// from a kernel-side HTTP server (Node's http on the kernel's sockets) with Node's http client
// over a stack connection; the body's SHA-256 must be the file's.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withNamespace } from '../helpers/netns.ts';
import { canUseTap } from '../helpers/root.ts';
import { execTs, sha256File, tsArgs, withTempDir } from '../helpers/tcp-ns.ts';

const it = canUseTap ? test : test.skip;

it('http.get over stack.connect fetches a 16 MiB file from the kernel intact', async () => {
  await withNamespace(async (ns) => {
    await withTempDir(async (dir) => {
      const file = path.join(dir, 'file');
      await writeFile(file, randomBytes(16 * 1024 * 1024 + 12_345));
      const expected = await sha256File(file);
      // The server listens on every address of the namespace; 10.0.0.1 appears with the TAP.
      const server = ns.spawn(process.execPath, tsArgs('test/clients/file-server.ts', ['8080', file]));
      await new Promise<void>((resolve, reject) => {
        let out = '';
        server.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('listening')) resolve();
        });
        server.once('exit', (code) => reject(new Error(`file server exited ${code}`)));
      });
      const r = await execTs(ns, 'examples/fetch.ts', ['--tap', 'tap0', '--expect-sha256', expected.sha256, 'http://10.0.0.1:8080/file'], 120_000);
      assert.is(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`fetched status=200 bytes=${expected.bytes} sha256=${expected.sha256} `));
    });
  });
});

test.run();
