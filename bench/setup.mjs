// What the benchmark and the profiler need before they start: the release builds, and the
// temporary --www folder the reference server serves the benchmark page from.

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeSocketioSync, REQUEST_TIMEOUT_MS } from './page/clients.mjs';
import { OURS } from './page/ours.mjs';
import { repoRoot } from './servers.mjs';

// The wasm client (scripts/build-client.sh), bss-server and bss-loadgen, in release.
export function build(log) {
  log('== build (release): wasm client, bss-server, bss-loadgen');
  const run = (cmd, args) => {
    const r = spawnSync(cmd, args, { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal})`);
  };
  run('bash', ['scripts/build-client.sh']);
  run('cargo', ['build', '--release', '-q', '-p', 'backbone-socket-sync-server', '-p', 'bss-loadgen']);
}

// `<dir>/www`: the repo's www/ (shim, ESM, pkg), the vendor scripts and bench/page/; with
// `ab` (another build's output folder, e.g. `BUILD_OUT=/tmp/b bash scripts/build-client.sh`),
// also that build under /ab/ (the ES module entry beside its pkg/), for client (1b).
export function assembleWww(dir, { ab } = {}) {
  const www = path.join(dir, 'www');
  cpSync(path.join(repoRoot, 'www'), www, { recursive: true });
  if (ab) {
    mkdirSync(path.join(www, 'ab'));
    cpSync(path.join(repoRoot, 'www', 'backbone-socket-sync.mjs'), path.join(www, 'ab', 'backbone-socket-sync.mjs'));
    cpSync(path.resolve(ab), path.join(www, 'ab', 'pkg'), { recursive: true });
  }
  mkdirSync(path.join(www, 'vendor'), { recursive: true });
  const vendor = {
    'jquery.js': 'jquery/dist/jquery.min.js',
    'underscore.js': 'underscore/underscore-umd-min.js',
    'backbone.js': 'backbone/backbone-min.js',
    'socket.io.min.js': 'socket.io-client/dist/socket.io.min.js',
  };
  for (const [name, file] of Object.entries(vendor)) {
    cpSync(path.join(repoRoot, 'node_modules', file), path.join(www, 'vendor', name));
  }
  cpSync(path.join(repoRoot, 'bench/page'), path.join(www, 'bench'), { recursive: true });
  // Our client's files where bench/page/ours.mjs says they are, or a clear error now rather
  // than a page that times out later.
  for (const [what, url] of Object.entries(OURS)) {
    if (!existsSync(path.join(www, url))) {
      throw new Error(`bench/page/ours.mjs: ${what} ${url} is not in www/ (not built, or renamed by the build: update ours.mjs)`);
    }
  }
  writeFirstFetchPages(path.join(www, 'bench'));
  return www;
}

// The two pages of bench/first-fetch.mjs, in `dir`: Backbone plus one sync each, fetching
// `/api/first_fetch` as soon as the scripts ran. No jQuery: neither sync needs it.
function writeFirstFetchPages(dir) {
  const fetchFirst = `
  var items = new (Backbone.Collection.extend({ url: '/api/first_fetch' }))();
  items.fetch({
    success: function () { window.firstFetch = { ms: performance.now(), models: items.length }; },
    error: function (c, xhr) { window.firstFetch = { error: (xhr && xhr.status) + ' ' + (xhr && xhr.statusText) }; }
  });`;
  const page = (title, scripts, inline) => `<!doctype html>
<!-- Written by bench/setup.mjs for bench/first-fetch.mjs: ${title}. -->
<meta charset="utf-8">
<title>first fetch: ${title}</title>
${['/vendor/underscore.js', '/vendor/backbone.js', ...scripts].map((src) => `<script src="${src}"></script>`).join('\n')}
<script>${inline}
</script>
`;
  writeFileSync(
    path.join(dir, 'first-fetch-ours.html'),
    page('this project\'s script-tag client', [OURS.script], `
  BackboneSocketSync.connect({ url: location.origin, timeout: ${REQUEST_TIMEOUT_MS} });${fetchFirst}`),
  );
  writeFileSync(
    path.join(dir, 'first-fetch-socketio.html'),
    page('Backbone.sync over socket.io-client', ['/vendor/socket.io.min.js'], `
  var makeSocketioSync = ${makeSocketioSync.toString()};
  var requestIdMethods = (new URLSearchParams(location.search).get('rid') || '').split(',');
  var socket = io(location.origin, { transports: ['websocket'] });
  Backbone.sync = makeSocketioSync(socket, { requestIdMethods: requestIdMethods, timeoutMs: ${REQUEST_TIMEOUT_MS} });${fetchFirst}`),
  );
}
