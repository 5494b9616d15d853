// The npm package as a user gets it: `npm pack` (which builds dist/ first), installed into a
// fresh project with no network, then loaded by plain node (no tsx), its types checked by tsc
// as a consumer's, and its bin run through npx. No namespace, no root.
//
// Offline: a fresh `npm install <tarball>` resolves ffi-rs through its registry document,
// which npm's cache may not hold in the form it asks for (npm ci of this checkout caches only
// the tarballs). So the temporary project has a lockfile, as a user's would: its ffi-rs
// entries are this checkout's (version, resolved, integrity), and `npm ci --offline` takes the
// tarballs from the cache by integrity.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const STEP_TIMEOUT_MS = 60_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

// The user's environment: no NODE_OPTIONS (it could load tsx), nothing of an enclosing npm run.
const env: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !/^npm_(package|lifecycle)_/.test(k)),
);

function run(cmd: string, args: string[], cwd: string): Run {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: STEP_TIMEOUT_MS });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(r: Run, what: string): Run {
  assert.is(r.code, 0, `${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** The ```js block of the README's "Using tapstack as a dependency" section. */
function readmeProgram(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.split('\n## ').find((s) => s.startsWith('Using tapstack as a dependency'));
  const m = section && /```js\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('README: no ```js program under "Using tapstack as a dependency"');
  return m[1]!;
}

/** A README section's ```js program and the output shown after it ("prints", indented). */
function readmeSection(title: string): { program: string; printed: string } {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.split('\n## ').find((s) => s.startsWith(title));
  const program = section && /```js\n([\s\S]*?)```/.exec(section)?.[1];
  const printed = section && /\nprints\n\n((?: {4}.*\n)+)/.exec(section)?.[1];
  if (!program || !printed) throw new Error(`README: no program and output under "${title}"`);
  return { program, printed: printed.replace(/^ {4}/gm, '') };
}

test('npm pack gives a package plain node imports, with types and a working bin', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'tapstack-pkg-'));
  try {
    // Pack (prepack builds dist/ from src/).
    const packed = JSON.parse(ok(run('npm', ['pack', '--json', '--pack-destination', tmp], ROOT), 'npm pack').stdout) as [
      { filename: string; files: { path: string }[] },
    ];
    const files = packed[0].files.map((f) => f.path);
    for (const f of files) {
      assert.ok(f.startsWith('dist/') || ['package.json', 'README.md', 'LICENSE'].includes(f), `unexpected file in the package: ${f}`);
      assert.ok(!/\.ts$/.test(f) || f.endsWith('.d.ts'), `TypeScript source in the package: ${f}`);
    }
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/craft/index.js', 'dist/craft/index.d.ts', 'dist/index.js.map', 'dist/cli.js', 'dist/tap/ffi.js']) {
      assert.ok(files.includes(f), `${f} missing from the package`);
    }
    assert.not.ok(files.some((f) => f.startsWith('dist/demo')), 'the demo drives a checkout: not in the package');
    const map = JSON.parse(readFileSync(path.join(ROOT, 'dist/index.js.map'), 'utf8')) as { sourcesContent?: string[] };
    assert.ok(map.sourcesContent?.[0]?.includes('Public API'), 'source maps carry their sources (src/ is not shipped)');

    // A fresh project, locked as described above.
    const app = path.join(tmp, 'app');
    const tarball = path.join(tmp, packed[0].filename);
    const spec = `file:${path.relative(app, tarball)}`;
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
    const ownLock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
    const packages: Record<string, unknown> = {
      '': { name: 'app', version: '1.0.0', dependencies: { tapstack: spec } },
      'node_modules/tapstack': {
        version: pkg.version,
        resolved: spec,
        integrity: `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`,
        license: pkg.license,
        dependencies: pkg.dependencies,
        bin: pkg.bin,
        engines: pkg.engines,
      },
    };
    for (const [k, v] of Object.entries(ownLock.packages)) if (/^node_modules\/(ffi-rs|@yuuang\/ffi-rs-|fast-check$|pure-rand$)/.test(k)) packages[k] = v;
    mkdirSync(app);
    const appPkg = { name: 'app', version: '1.0.0', private: true, type: 'module', dependencies: { tapstack: spec } };
    writeFileSync(path.join(app, 'package.json'), JSON.stringify(appPkg, null, 2));
    writeFileSync(path.join(app, 'package-lock.json'), JSON.stringify({ name: 'app', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2));
    const installed = run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], app);
    if (/ENOTCACHED/.test(installed.stderr)) assert.unreachable(`ffi-rs is not in npm's cache: run npm ci in the checkout first\n${installed.stderr}`);
    ok(installed, 'npm ci --offline');

    // The README's program, with plain node: two stacks over an in-memory link, a TCP exchange.
    writeFileSync(path.join(app, 'main.mjs'), readmeProgram());
    const main = ok(run(process.execPath, ['main.mjs'], app), 'node main.mjs');
    assert.is(main.stdout, 'HELLO\n');

    // tapstack/craft from the installed package: the README's "Crafting frames" program.
    const craft = readmeSection('Crafting frames');
    writeFileSync(path.join(app, 'craft.mjs'), craft.program);
    assert.is(ok(run(process.execPath, ['craft.mjs'], app), 'node craft.mjs').stdout, craft.printed);

    // Inline as well: UDP between the two stacks, and the exports map (the public entry and
    // package.json only; dist/ files are not importable by path).
    const inline = `
      import { createLinkPair, createStack, RealClock } from 'tapstack';
      import { createRequire } from 'node:module';
      const clock = new RealClock();
      const [la, lb] = createLinkPair(clock);
      const a = await createStack({ link: la, clock, ip: '10.0.0.1/24' });
      const b = await createStack({ link: lb, clock, ip: '10.0.0.2/24' });
      const server = b.createSocket('udp4', (msg, rinfo) => server.send(msg, rinfo.port, rinfo.address));
      await new Promise((r) => server.bind(7, r));
      const client = a.createSocket('udp4');
      const echoed = new Promise((r) => client.on('message', (msg) => r(msg.toString())));
      client.send('ping', 7, '10.0.0.2');
      console.log(await echoed);
      client.close(); server.close(); await a.close(); await b.close();
      const require = createRequire(import.meta.url);
      console.log(require('tapstack/package.json').name);
      try { await import('tapstack/dist/stack.js'); console.log('deep import allowed'); } catch (e) { console.log(e.code); }
    `;
    const r = ok(run(process.execPath, ['--input-type=module', '-e', inline], app), 'node -e');
    assert.is(r.stdout, 'ping\ntapstack\nERR_PACKAGE_PATH_NOT_EXPORTED\n');

    // The live page from the installed package: its HTML and scripts come from dist/ (the
    // HTTP service of one in-memory stack, asked by the other over TCP). Services are not
    // in the exports map, so they are imported by file.
    writeFileSync(
      path.join(app, 'page.mjs'),
      `import { createLinkPair, createStack, RealClock } from 'tapstack';
      const dist = new URL('./node_modules/tapstack/dist/', import.meta.url);
      const { startServices } = await import(new URL('services/index.js', dist));
      await import(new URL('services/all.js', dist));
      const clock = new RealClock();
      const [la, lb] = createLinkPair(clock);
      const a = await createStack({ link: la, clock, ip: '10.0.0.1/24' });
      const b = await createStack({ link: lb, clock, ip: '10.0.0.2/24' });
      const stop = await startServices(b, ['http']);
      const get = (path) => new Promise((resolve, reject) => {
        const s = a.connect({ host: '10.0.0.2', port: 80 }, () => s.write('GET ' + path + ' HTTP/1.0\\r\\nhost: x\\r\\n\\r\\n'));
        const chunks = [];
        s.on('data', (c) => chunks.push(c));
        s.on('end', () => { s.end(); resolve(Buffer.concat(chunks).toString()); });
        s.on('error', reject);
      });
      for (const p of ['/', '/teach/page/page.js', '/teach/page/model.js', '/teach/charts.js', '/trace/format-text.js', '/trace/filter.js']) {
        const r = await get(p);
        const type = /content-type: ([^;\\r]*)/i.exec(r)?.[1];
        console.log(p, r.split('\\r\\n')[0], type, r.includes('<script type="module" src="/teach/page/page.js">') || r.includes('// @ts-check'));
      }
      await stop(); await a.close(); await b.close();
      `,
    );
    const page = ok(run(process.execPath, ['page.mjs'], app), 'node page.mjs');
    assert.is(
      page.stdout,
      '/ HTTP/1.1 200 OK text/html true\n' +
        '/teach/page/page.js HTTP/1.1 200 OK text/javascript true\n' +
        '/teach/page/model.js HTTP/1.1 200 OK text/javascript true\n' +
        '/teach/charts.js HTTP/1.1 200 OK text/javascript true\n' +
        '/trace/format-text.js HTTP/1.1 200 OK text/javascript true\n' +
        '/trace/filter.js HTTP/1.1 200 OK text/javascript true\n',
    );

    // The types, as a strict consumer's tsc sees them (no skipLibCheck).
    writeFileSync(
      path.join(app, 'check.ts'),
      `import { createStack, type Stack, type TcpSocket } from 'tapstack';\n` +
        `import { type Dissected, stack, tcp } from 'tapstack/craft';\n` +
        `export const frame: Buffer = stack(tcp({ flags: 'SA' })).build();\n` +
        `export const port = (d: Dissected): number | undefined => d.tcp?.sport;\n` +
        `const s: Promise<Stack> = createStack({ ip: '10.0.0.1/24' });\n` +
        `export const f = async (): Promise<TcpSocket> => (await s).connect({ host: '10.0.0.2', port: 7 });\n` +
        `// @ts-expect-error: ip is a string\ncreateStack({ ip: 1 });\n`,
    );
    const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
    const tscArgs = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022'];
    ok(run(process.execPath, [tsc, ...tscArgs, '--typeRoots', path.join(ROOT, 'node_modules/@types'), '--types', 'node', 'check.ts'], app), 'tsc');

    // The bin, through npx (node_modules/.bin/tapstack links to dist/cli.js).
    const help = ok(run('npx', ['--offline', '--no-install', 'tapstack', '--help'], app), 'npx tapstack --help');
    assert.match(help.stdout, /^usage: tapstack \[options\]/);
    const bad = run('npx', ['--offline', '--no-install', 'tapstack', '--bogus'], app);
    assert.is(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /^tapstack: unknown argument '--bogus'/);
    // `tapstack plot` from dist/ (its charts module is plain JavaScript, copied by tsc).
    writeFileSync(path.join(app, 'trace.jsonl'), readFileSync(path.join(ROOT, 'test/fixtures/plot-trace.jsonl')));
    ok(run('npx', ['--offline', '--no-install', 'tapstack', 'plot', 'trace.jsonl', '-o', 'plot.svg'], app), 'npx tapstack plot');
    assert.ok(readFileSync(path.join(app, 'plot.svg'), 'utf8').includes('class="chart time-sequence"'), 'the plot has its time-sequence graph');
    // `tapstack fuzz` from dist/: fast-check is a dependency of the package (the fuzzer's cases and shrinking).
    const fuzzed = ok(run('npx', ['--offline', '--no-install', 'tapstack', 'fuzz', '--seed', '1', '--runs', '5'], app), 'npx tapstack fuzz');
    assert.match(fuzzed.stdout, /^fuzz: 5 runs, 0 failures, \d+ transitions$/m);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
