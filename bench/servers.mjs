// Starting and stopping the servers the benchmark measures: the Rust reference server
// (`target/release/bss-server`) and the Node stub (bench/stub-server.mjs). Both listen on
// 127.0.0.1 on a port they pick (`--port 0`), print `listening on http://HOST:PORT`, and
// are stopped by their PID.

import { spawn } from 'node:child_process';
import path from 'node:path';

export const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

// Servers still running: killed when this process exits for any reason (an error, Ctrl-C,
// a closed stdout), so no run leaves one behind.
const live = new Set();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});
// Has `child` killed when this process exits, if it is still running then.
export function track(child) {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(signal, () => process.exit(130));
// `node bench/run.mjs | head` must not crash on EPIPE before cleaning up.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(141);
});

// Starts `command args` with the open-files limit raised (for thousands of sockets) and
// resolves with {pid, url, stop()} once it printed its address.
export function startServer(name, command, args, { env = {}, nofile = 65536 } = {}) {
  // `ulimit -n` in a shell that then execs the server, so the PID is the server's own.
  const script = `ulimit -n ${nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
  const child = spawn('bash', ['-c', script, 'bash', command, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  let log = '';
  const remember = (chunk) => {
    log = (log + chunk).slice(-8000);
  };
  child.stderr.on('data', remember);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${name} did not print its address within 30 s`)), 30000);
    function fail(error) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${error.message}\n--- ${name} output ---\n${log}`));
    }
    child.on('error', fail);
    child.on('exit', (code, signal) => fail(new Error(`${name} exited (${code ?? signal}) before listening`)));
    child.stdout.on('data', (chunk) => {
      remember(chunk);
      const match = /listening on (http:\/\/[^\s]+)/.exec(log);
      if (!match) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.stdout.removeAllListeners('data');
      child.stdout.resume();
      resolve({
        name,
        pid: child.pid,
        url: match[1],
        log: () => log,
        stop: () => stop(child),
      });
    });
  });
}

// SIGTERM, then SIGKILL after 5 s; resolves when the process is gone.
function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

let serverBin = path.join(repoRoot, 'target/release/bss-server');

// Measures another build of the server (`--server-bin`) instead of target/release's.
export function setServerBin(bin) {
  serverBin = bin;
}

// The Rust reference server on a fresh SQLite file, serving `www`.
export function startRustServer(db, www) {
  return startServer('bss-server', serverBin, ['--port', '0', '--db', db, '--www', www], {
    // Request logging would be measured too; warnings and errors still show.
    env: { RUST_LOG: 'warn' },
  });
}

// The original design's in-memory socket.io server in Node.
export function startStubServer() {
  return startServer('stub-server', process.execPath, [path.join(repoRoot, 'bench/stub-server.mjs'), '--port', '0']);
}
