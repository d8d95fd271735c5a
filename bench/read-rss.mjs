#!/usr/bin/env node
// The server's peak memory for big collection reads (issue 11's row "one GET of a
// 600,000-document collection: 500 MB peak; 8 at once 980 MB"):
//
//   node bench/read-rss.mjs [--server-bin target/release/bss-server] [--models 600000]
//
// fills a SQLite file with one collection of --models documents (~80 bytes each, written with
// the sqlite3 CLI into the tables the server created, so the fill costs seconds), then for
// --max-read 10000 (the default) and --max-read <models>, and for REST and the socket, starts
// a fresh server on it, makes 1 read and then 8 reads at once (each client reading its whole
// answer), and prints the server's RSS before and its peak (VmHWM) after each. Needs the
// sqlite3 CLI (Debian: apt-get install sqlite3). Compare two builds with --server-bin.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { repoRoot, startServer } from './servers.mjs';

const { values: flags } = parseArgs({
  options: {
    'server-bin': { type: 'string', default: path.join(repoRoot, 'target/release/bss-server') },
    models: { type: 'string', default: '600000' },
  },
});
const models = Number(flags.models);
const bin = path.resolve(flags['server-bin']);

function status(pid, field) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`));
  return Math.round(Number(line.split(/\s+/)[1]) / 1024);
}

async function start(db, maxRead) {
  const args = ['--port', '0', '--db', db, '--max-read', String(maxRead), '--max-read-bytes', String(1 << 30)];
  return startServer('bss-server', bin, args, { env: { RUST_LOG: 'warn' } });
}

// One REST read, its body read to the end; resolves to [models, truncated-at header].
async function restRead(url) {
  const response = await fetch(`${url}/api/big`);
  const text = await response.text();
  return [JSON.parse(text).length, response.headers.get('x-truncated-at')];
}

// One socket.io read over a raw WebSocket; resolves to the number of models.
function socketRead(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`, { maxPayload: 2 ** 31 });
    ws.on('error', reject);
    ws.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('0')) ws.send('40');
      else if (text.startsWith('40')) ws.send('421' + JSON.stringify(['read', { signature: { endPoint: '/api/big' } }]));
      else if (text === '2') ws.send('3');
      else if (text.startsWith('431')) {
        const [error, list] = JSON.parse(text.slice(3));
        ws.close();
        if (error) reject(new Error(JSON.stringify(error)));
        else resolve(list.length);
      }
    });
  });
}

async function measure(db, maxRead, transport, atOnce) {
  const server = await start(db, maxRead);
  try {
    const read = transport === 'REST' ? () => restRead(server.url) : () => socketRead(server.url);
    const before = status(server.pid, 'VmRSS');
    const results = await Promise.all(Array.from({ length: atOnce }, read));
    const peak = status(server.pid, 'VmHWM');
    const first = results[0];
    const got = Array.isArray(first) ? `${first[0]} models${first[1] ? `, X-Truncated-At ${first[1]}` : ''}` : `${first} models`;
    return { maxRead, transport, atOnce, before, peak, got };
  } finally {
    await server.stop();
  }
}

async function main() {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bss-read-rss-'));
  try {
    const db = path.join(tmp, 'big.sqlite3');
    // The server creates its tables; the documents go in with one SQL statement.
    await (await start(db, 10000)).stop();
    const fill = `
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${models})
      INSERT INTO documents (owner, collection, id, doc)
        SELECT '', '/api/big', i, json_object('title', 'todo number ' || i, 'done', json('false'), 'order', i, 'id', i) FROM n;
      INSERT INTO sequences (owner, collection, last_id) VALUES ('', '/api/big', ${models});`;
    execFileSync('sqlite3', [db, fill]);
    const bytes = Number(execFileSync('sqlite3', [db, "SELECT sum(length(doc)) FROM documents"]).toString());
    console.log(`server ${bin}\n${models} documents, ${(bytes / 2 ** 20).toFixed(1)} MiB of JSON\n`);
    console.log('| --max-read | transport | reads at once | RSS before | peak RSS | answer |');
    console.log('|---|---|---|---|---|---|');
    for (const maxRead of [10000, models]) {
      for (const transport of ['REST', 'socket']) {
        for (const atOnce of [1, 8]) {
          const r = await measure(db, maxRead, transport, atOnce);
          console.log(`| ${r.maxRead} | ${r.transport} | ${r.atOnce} | ${r.before} MiB | ${r.peak} MiB | ${r.got} |`);
        }
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
