// What the benchmark and the profiler need before they start: the release builds, and the
// temporary --www folder the reference server serves the benchmark page from.

import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync } from 'node:fs';
import path from 'node:path';
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

// `<dir>/www`: the repo's www/ (shim, ESM, pkg), the vendor scripts and bench/page/.
export function assembleWww(dir) {
  const www = path.join(dir, 'www');
  cpSync(path.join(repoRoot, 'www'), www, { recursive: true });
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
  return www;
}
