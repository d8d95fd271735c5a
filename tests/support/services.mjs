// Throwaway PostgreSQL and Redis for the Node tests, as server/tests/services does for the
// Rust ones: Debian's real servers (scripts/setup.sh installs them), each in its own temp dir
// and listening only on a unix socket there, started as foreground children and stopped by
// PID. A missing binary is an error naming the command that installs it, never a skip.

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// How long a server may take to become ready (the machine is shared and loaded).
const READY_MS = 30000;
// The unix-socket "port" of every throwaway postgres (the socket file is in its own dir).
const PG_PORT = '5432';

// Never leave a server behind, even when the test process ends early.
const running = new Set();
process.on('exit', () => running.forEach((child) => child.kill('SIGKILL')));

// Debian's /usr/lib/postgresql/<major>/bin/<name>, newest major first.
function pgBin(name) {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root) ? readdirSync(root).filter((d) => /^\d+$/.test(d)).map(Number) : [];
  const path = majors.length && join(root, String(Math.max(...majors)), 'bin', name);
  if (!path || !existsSync(path)) {
    throw new Error(`PostgreSQL's \`${name}\` was not found under ${root}/*/bin: run \`bash scripts/setup.sh\` (it installs Debian's postgresql package)`);
  }
  return path;
}

function redisBin() {
  const path = '/usr/bin/redis-server';
  if (!existsSync(path)) {
    throw new Error('redis-server was not found at /usr/bin/redis-server: run `bash scripts/setup.sh` (it installs Debian\'s redis-server package)');
  }
  return path;
}

// Spawns a foreground server, tracked for cleanup; `exited` resolves with its exit.
function start(command, args) {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  running.add(child);
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    running.delete(child);
    resolve(code ?? signal);
  }));
  child.stderrText = () => stderr;
  return child;
}

// Polls `ready()` until it holds; fails when `child` exits first or after READY_MS.
async function waitReady(child, what, ready) {
  const deadline = Date.now() + READY_MS;
  for (;;) {
    if (await ready()) return;
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited before it was ready: ${child.stderrText()}`);
    }
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${READY_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function stopChild(child, signal) {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  await child.exited;
}

// Runs `program` as the postgres user (initdb and postgres refuse root).
function asPostgres(program, args, deathSignal) {
  return ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', `--pdeathsig=${deathSignal}`, program, ...args]];
}

// A throwaway PostgreSQL cluster: {url(db), createDatabase(prefix), stop()}.
export async function startPostgres() {
  const initdb = pgBin('initdb');
  const dir = mkdtempSync(join(tmpdir(), 'bss-pg-'));
  execFileSync('chown', ['postgres:postgres', dir]);
  const data = join(dir, 'data');
  const [cmd, args] = asPostgres(initdb, ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8',
    '--locale=C.UTF-8', '--no-sync', '--no-instructions'], 'TERM');
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const [pgCmd, pgArgs] = asPostgres(pgBin('postgres'), ['-D', data, '-p', PG_PORT, '-k', dir,
    '-c', 'listen_addresses=', '-c', 'fsync=off', '-c', 'max_connections=200'], 'INT');
  const child = start(pgCmd, pgArgs);
  const isready = pgBin('pg_isready');
  await waitReady(child, 'postgres', () => new Promise((resolve) => {
    spawn(isready, ['-h', dir, '-p', PG_PORT, '-q']).once('exit', (code) => resolve(code === 0));
  }));
  let next = 1;
  const url = (db) => `postgresql://postgres@${encodeURIComponent(dir)}:${PG_PORT}/${db}`;
  return {
    url,
    // A fresh database; its url.
    createDatabase(prefix) {
      const name = `${prefix}_${next++}`;
      execFileSync(pgBin('psql'), ['-h', dir, '-p', PG_PORT, '-U', 'postgres', '-d', 'postgres',
        '-v', 'ON_ERROR_STOP=1', '-qAtc', `CREATE DATABASE ${name}`]);
      return url(name);
    },
    async stop() {
      await stopChild(child, 'SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// A throwaway Redis on a unix socket, no persistence: {url, stop()}.
export async function startRedis() {
  const dir = mkdtempSync(join(tmpdir(), 'bss-redis-'));
  const socket = join(dir, 'redis.sock');
  const child = start('setpriv', ['--pdeathsig=TERM', redisBin(), '--port', '0', '--unixsocket', socket,
    '--unixsocketperm', '700', '--save', '', '--appendonly', 'no']);
  await waitReady(child, 'redis-server', () => new Promise((resolve) => {
    const probe = connect(socket);
    probe.once('connect', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  }));
  return {
    url: `redis+unix://${socket}`,
    async stop() {
      await stopChild(child, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
