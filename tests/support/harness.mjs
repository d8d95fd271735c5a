// Shared helpers for the JS tests: start the socket.io test server on a free loopback
// port and stop it by PID; launch headless Chromium with the flags the closed network needs.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Starts tests/support/socketio-server.mjs with `args` (short heartbeats unless given) and
 * resolves `{port, url, pid, stop(), stats(), reset()}` once it printed `LISTENING <port>`.
 */
export function startServer(args = []) {
  const script = path.join(repoRoot, 'tests/support/socketio-server.mjs');
  const defaults = args.some((a) => a.startsWith('--ping-')) ? [] : ['--ping-interval', '300', '--ping-timeout', '200'];
  const child = spawn(process.execPath, [script, '--port', '0', ...defaults, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error('server did not start in 10 s')), 10000);
    const fail = (err) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${err.message}\n${stderr}`));
    };
    child.on('exit', (code) => fail(new Error(`server exited with ${code}`)));
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^LISTENING (\d+)$/m.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      const port = Number(m[1]);
      const url = `http://127.0.0.1:${port}`;
      const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
      resolve({
        port,
        url,
        pid: child.pid,
        output: () => out,
        stderr: () => stderr,
        exited,
        /** Sends SIGTERM and resolves the exit `{code, signal}`. */
        stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          return exited;
        },
        /** GET /stats as an object. */
        stats: () => fetch(`${url}/stats`).then((r) => r.json()),
        /** POST /reset. */
        reset: () => fetch(`${url}/reset`, { method: 'POST' }).then((r) => r.json()),
      });
    });
  });
}

/** The flags every Chromium we start needs on this closed network. */
export const chromiumArgs = [
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Launches headless /usr/bin/chromium through playwright-core. */
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: chromiumArgs });
}
