// The npm package: `npm pack` the repository, `npm install` the tarball into a fresh
// folder, check what it ships and how Node resolves its exports, then load the installed
// ES module entry and the installed script-tag file in Chromium (served over http from
// that folder by the socket.io test server) and do a round trip with each.
// Needs the client built into www/pkg (bash scripts/build-client.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, readdirSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, launchChromium, repoRoot } from '../support/harness.mjs';

let work, app, server, browser;
const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const pkgDir = () => path.join(app, 'node_modules/backbone-socket-sync');

before(async () => {
  assert.ok(existsSync(path.join(repoRoot, 'www/pkg/backbone_socket_sync_bg.wasm')), 'run bash scripts/build-client.sh first');
  work = mkdtempSync(path.join(tmpdir(), 'bss-pack-'));
  npm(['pack', '--pack-destination', work, '--loglevel=error'], repoRoot);
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  assert.ok(tarball, 'npm pack made a tarball');
  app = path.join(work, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  npm(['install', path.join(work, tarball), '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], app);
  server = await startServer(['--static', `/app=${app}`]);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('the tarball ships the shim, the module, the types and the built wasm, and nothing else', () => {
  const files = [];
  const walk = (dir, rel = '') => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(dir, e.name), `${rel}${e.name}/`);
      else files.push(rel + e.name);
    }
  };
  walk(pkgDir());
  files.sort();
  for (const f of [
    'package.json',
    'www/backbone-socket-sync.js',
    'www/backbone-socket-sync.mjs',
    'www/backbone-socket-sync.d.ts',
    'www/pkg/backbone_socket_sync.js',
    'www/pkg/backbone_socket_sync_bg.wasm',
    'www/pkg/backbone-socket-sync.min.js',
    'www/pkg/backbone-socket-sync.min.mjs',
  ]) {
    assert.ok(files.includes(f), `${f} is in the package (got ${files.join(', ')})`);
  }
  const stray = files.filter((f) => !/^(package\.json|README\.md|LICENSE[^/]*|www\/backbone-socket-sync\.(js|d\.ts)|www\/[^/]+\.mjs|www\/pkg\/[^/]+\.(js|mjs|wasm|d\.ts))$/.test(f));
  assert.deepEqual(stray, [], 'no sources, tests or scripts in the package');
  const wasm = readFileSync(path.join(pkgDir(), 'www/pkg/backbone_socket_sync_bg.wasm'));
  assert.deepEqual([...wasm.subarray(0, 4)], [0, 0x61, 0x73, 0x6d], 'a real wasm module');
  assert.deepEqual(readdirSync(path.join(app, 'node_modules')).filter((d) => !d.startsWith('.')), ['backbone-socket-sync'], 'no dependencies pulled in');
});

test('Node resolves the package exports from the installed folder', () => {
  const resolve = (spec) =>
    execFileSync(process.execPath, ['--input-type=module', '-e', `console.log(import.meta.resolve(${JSON.stringify(spec)}))`], {
      cwd: app,
      encoding: 'utf8',
    }).trim();
  assert.match(resolve('backbone-socket-sync'), /\/node_modules\/backbone-socket-sync\/www\/backbone-socket-sync\.mjs$/);
  assert.match(resolve('backbone-socket-sync/script'), /\/www\/backbone-socket-sync\.js$/);
  assert.match(resolve('backbone-socket-sync/script.min'), /\/www\/pkg\/backbone-socket-sync\.min\.js$/);
  assert.match(resolve('backbone-socket-sync/min'), /\/www\/pkg\/backbone-socket-sync\.min\.mjs$/);
  assert.match(resolve('backbone-socket-sync/pkg/backbone_socket_sync_bg.wasm'), /\/www\/pkg\/backbone_socket_sync_bg\.wasm$/);
  const meta = JSON.parse(readFileSync(path.join(pkgDir(), 'package.json'), 'utf8'));
  assert.ok(existsSync(path.join(pkgDir(), meta.types)), 'the types file named by package.json exists');
  assert.ok(existsSync(path.join(pkgDir(), meta.exports['.'].types)));
});

/** Opens a blank page with Backbone loaded, from the test server. */
async function backbonePage(extraScripts = []) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  const q = new URLSearchParams();
  for (const s of ['/vendor/underscore.js', '/vendor/jquery.js', '/vendor/backbone.js', ...extraScripts]) q.append('script', s);
  await page.goto(`${server.url}/page.html?${q}`);
  return page;
}

test('the installed ES module entry installs into Backbone and does a round trip in Chromium', async () => {
  await server.reset();
  const page = await backbonePage();
  const r = await page.evaluate(async () => {
    const m = await import('/app/node_modules/backbone-socket-sync/www/backbone-socket-sync.mjs');
    const original = Backbone.sync;
    const installed = m.install(Backbone, { url: location.origin });
    await m.ready;
    const Todos = Backbone.Collection.extend({ url: '/api/packed' });
    const todos = new Todos();
    const created = await new Promise((resolve, reject) =>
      todos.create({ title: 'from npm' }, { wait: true, success: (model) => resolve(model.toJSON()), error: reject }),
    );
    const again = new Todos();
    await again.fetch();
    return {
      exports: Object.keys(m).sort(),
      installed: Backbone.sync === installed,
      ajaxKept: Backbone.ajaxSync === original,
      created,
      fetched: again.toJSON(),
      connected: m.socket.connected,
    };
  });
  for (const name of ['Socket', 'connect', 'default', 'install', 'ready', 'socket', 'sync', 'usesAjax']) {
    assert.ok(r.exports.includes(name), `exports ${name} (got ${r.exports.join(', ')})`);
  }
  assert.equal(r.installed, true);
  assert.equal(r.ajaxKept, true);
  assert.deepEqual(r.created, { title: 'from npm', id: 1 });
  assert.deepEqual(r.fetched, [{ title: 'from npm', id: 1 }]);
  assert.equal(r.connected, true);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

for (const file of ['www/backbone-socket-sync.js', 'www/pkg/backbone-socket-sync.min.js']) {
  test(`the installed script-tag file ${file} works from node_modules too`, async () => {
    await server.reset();
    const page = await backbonePage([`/app/node_modules/backbone-socket-sync/${file}`]);
    const r = await page.evaluate(async () => {
      const M = Backbone.Model.extend({ urlRoot: '/api/tag' });
      const saving = new M({ via: 'script tag' }).save(); // before ready: queued
      await BackboneSocketSync.ready;
      return saving;
    });
    assert.deepEqual(r, { via: 'script tag', id: 1 });
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
}
