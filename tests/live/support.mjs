// Support for the live, reconnection, fallback and fault tests: the real Rust server (its
// stderr kept so that its "dedupe hit" lines can be counted, and killable with SIGKILL), a
// loopback TCP proxy that can cut every connection through it or drop them at random and be
// pointed at a restarted server, and headless Chromium.

import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

import { repo, serverBinary } from '../server/server.mjs';

// The server binary, temporary folders and the repository root are shared with tests/server.
export { repo, serverBinary, tempDir, removeDir } from '../server/server.mjs';
export const WASM = join(repo, 'www', 'pkg', 'backbone_socket_sync_bg.wasm');
const CHROMIUM_ARGS = ['--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

// Every server started here is killed when this process ends, however it ends.
const children = new Set();
process.on('exit', () => children.forEach((child) => child.kill('SIGKILL')));
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => process.exit(128 + (signal === 'SIGINT' ? 2 : 15)));
}

// A www folder in `dir`: the repository's www/ (symlinked) plus `pages` ({name: html}).
// Test pages are real files served by the server, not documents made up by the browser's
// request interception, which Chromium would treat as public and so block their loopback
// WebSockets (ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS).
export function makeWww(dir, pages) {
  const www = join(dir, 'www');
  mkdirSync(www);
  for (const name of readdirSync(join(repo, 'www'))) symlinkSync(join(repo, 'www', name), join(www, name));
  for (const [name, html] of Object.entries(pages)) writeFileSync(join(www, name), html);
  return www;
}

// Starts bss-server on a free loopback port over `db` (serving `www`, default the repo's, with
// extra flags `args`); resolves with {url, port, pid, dedupeHits(), expiries(), kill(), stop()}
// once it printed its address. `expiries()` counts sockets disconnected at their token's exp.
export function startServer(db, www = join(repo, 'www'), args = []) {
  const child = spawn(serverBinary(), ['--port', '0', '--host', '127.0.0.1', '--db', db, '--www', www, ...args], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      RUST_LOG: 'warn,backbone_socket_sync_server::live=info,backbone_socket_sync_server::access=info',
      NO_COLOR: '1',
    },
  });
  children.add(child);
  let hits = 0;
  let expiries = 0;
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    err += chunk;
    const lines = err.split('\n');
    err = lines.pop();
    for (const line of lines) {
      if (line.includes('dedupe hit')) hits++;
      else if (line.includes('token expired')) expiries++;
      else if (/WARN|ERROR/.test(line)) process.stderr.write(`[bss-server] ${line}\n`);
    }
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    children.delete(child);
    resolve(code ?? signal);
  }));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('bss-server did not print its address within 10 s'));
    }, 10000);
    exited.then((code) => reject(new Error(`bss-server exited early with ${code}`)));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /^listening on (http:\/\/127\.0\.0\.1:(\d+))\n/.exec(out);
      if (!match) return;
      clearTimeout(timer);
      child.stdout.resume();
      resolve({
        url: match[1],
        port: Number(match[2]),
        pid: child.pid,
        dedupeHits: () => hits,
        expiries: () => expiries,
        // kill -9: no graceful shutdown, as a crash would be.
        async kill() {
          if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
          await exited;
        },
        // SIGTERM, SIGKILL after 5 s.
        async stop() {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const force = setTimeout(() => child.kill('SIGKILL'), 5000);
          process.kill(child.pid, 'SIGTERM');
          await exited;
          clearTimeout(force);
        },
      });
    });
  });
}

// A loopback TCP proxy on a free port forwarding to 127.0.0.1:`target`. `cut()` closes every
// connection through it; `refuse(true)` also closes new ones at once (a dead network);
// `blockUpgrades(true)` closes connections whose first bytes ask for a WebSocket upgrade (a
// proxy that lets HTTP through but not WebSockets);
// `retarget(port)` points new connections at another port; `randomDrops({min, max})` closes
// each connection after a random number of milliseconds in [min, max), drawn from `random`
// (pass a seeded one to replay a schedule: the n-th connection scheduled gets the n-th draw).
// Counts what it did.
export async function startProxy(target, { random = Math.random } = {}) {
  const open = new Set();
  let refusing = false;
  let blocking = false;
  let drops = null;
  const stats = { connections: 0, drops: 0, refused: 0, blocked: 0 };
  const server = net.createServer((client) => {
    stats.connections++;
    if (refusing) {
      stats.refused++;
      return client.destroy();
    }
    const upstream = net.connect(target, '127.0.0.1');
    const pair = { client, upstream, timer: null };
    open.add(pair);
    const close = () => {
      clearTimeout(pair.timer);
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.once('data', (first) => {
      if (blocking && /^upgrade:\s*websocket/im.test(first.toString('latin1'))) {
        stats.blocked++;
        return close();
      }
      upstream.write(first);
      client.pipe(upstream);
    });
    upstream.pipe(client);
    pair.close = close;
    if (drops) scheduleDrop(pair);
  });
  // Closes `pair` after a random time in the current drop range.
  function scheduleDrop(pair) {
    clearTimeout(pair.timer);
    pair.timer = setTimeout(() => {
      if (!open.has(pair)) return;
      stats.drops++;
      pair.close();
    }, drops.min + random() * (drops.max - drops.min));
  }
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    stats,
    retarget(port) {
      target = port;
    },
    refuse(on) {
      refusing = on;
    },
    blockUpgrades(on) {
      blocking = on;
    },
    // Drops every connection, open or new, after a random time in [min, max) ms; null stops.
    randomDrops(range) {
      drops = range;
      for (const pair of open) {
        if (drops) scheduleDrop(pair);
        else clearTimeout(pair.timer);
      }
    },
    // Closes every open connection; returns how many.
    cut() {
      const n = open.size;
      for (const pair of [...open]) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      return n;
    },
    close() {
      drops = null;
      for (const pair of [...open]) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

export function launchBrowser() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

// Waits until `check()` returns a truthy value (polling every 50 ms) or throws after `ms`.
export async function eventually(check, ms, what) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// A page at `origin` + `path` that loads Backbone, the script-tag client and `script`.
export function testPage(script) {
  return `<!doctype html><meta charset="utf-8"><title>bss live test</title>
<script src="/vendor/jquery.js"></script>
<script src="/vendor/underscore.js"></script>
<script src="/vendor/backbone.js"></script>
<script src="/backbone-socket-sync.js"></script>
<script>${script}</script>`;
}
