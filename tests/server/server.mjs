// Starts and stops the real Rust server (target/debug/bss-server) for the Node tests:
// a free loopback port (--port 0, read back from the "listening on" line), a database in a
// fresh temporary directory unless one is given, and SIGTERM by PID to stop it.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// Never leave a server behind, even when the test process ends early (an uncaught error,
// or a SIGINT/SIGTERM from a runner's timeout).
const running = new Set();
const reapAll = () => running.forEach((child) => child.kill('SIGKILL'));
process.on('exit', reapAll);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    reapAll();
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  });
}

// The server binary: $BSS_SERVER_BIN, or the debug build, (re)built once per process.
let built = false;
export function serverBinary() {
  if (process.env.BSS_SERVER_BIN) return process.env.BSS_SERVER_BIN;
  if (!built) {
    execFileSync('cargo', ['build', '-q', '-p', 'backbone-socket-sync-server'], { cwd: repo, stdio: 'inherit' });
    built = true;
  }
  return join(repo, 'target', 'debug', 'bss-server');
}

// A temporary directory; remove it with `rmSync(dir, {recursive: true})` (see `removeDir`).
export function tempDir() {
  return mkdtempSync(join(tmpdir(), 'bss-test-'));
}

export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}

// Starts the server on `db` with extra flags; resolves with {url, port, stop()}.
export function startServer({ db, args = [] } = {}) {
  const child = spawn(serverBinary(), ['--port', '0', '--host', '127.0.0.1', '--db', db, '--www', join(repo, 'www'), ...args], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('bss-server did not print its address within 10 s'));
    }, 10000);
    child.on('exit', (code) => reject(new Error(`bss-server exited early with ${code}`)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /^listening on (http:\/\/127\.0\.0\.1:(\d+))\n/.exec(out);
      if (!match) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.stdout.resume();
      resolve({
        url: match[1],
        port: Number(match[2]),
        pid: child.pid,
        // SIGTERM, then wait for a clean exit (SIGKILL after 5 s).
        stop() {
          return new Promise((done, fail) => {
            if (child.exitCode !== null) return done(child.exitCode);
            const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
            child.once('exit', (code, signal) => {
              clearTimeout(kill);
              if (code === 0) done(0);
              else fail(new Error(`bss-server exited with ${code ?? signal}`));
            });
            child.kill('SIGTERM');
          });
        },
      });
    });
  });
}
