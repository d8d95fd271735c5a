// The native half of the benchmark: bench/loadgen (`bss-loadgen`) against the Rust
// reference server (fresh SQLite file each time) and against the original design's Node
// stub (bench/stub-server.mjs), at C concurrent connections, flat out and at a fixed rate.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot, startRustServer, startStubServer, track } from './servers.mjs';

export const LOAD_PLANS = {
  full: { conns: [100, 1000, 5000], seconds: 8, rate: 10000 },
  smoke: { conns: [20], seconds: 1.5, rate: 1000 },
};

// Runs the generator once; resolves with its JSON report (plus `exitCode`).
function loadgen(args) {
  return new Promise((resolve, reject) => {
    const child = track(spawn(path.join(repoRoot, 'target/release/bss-loadgen'), args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('exit', (code) => {
      try {
        const report = JSON.parse(out.trim().split('\n').pop());
        resolve({ ...report, exitCode: code });
      } catch {
        reject(new Error(`bss-loadgen exited ${code} without a report: ${err.slice(-2000)}`));
      }
    });
  });
}

// Every (server, C, mode) run of `plan`; returns {runs, errors}.
export async function runLoad(plan, www, { log = console.log } = {}) {
  const runs = [];
  const errors = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bss-load-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  try {
    for (const server of ['rust', 'stub']) {
      for (const conns of plan.conns) {
        const s = server === 'rust' ? await startRustServer(path.join(dir, `load-${conns}.sqlite3`), www) : await startStubServer();
        try {
          for (const rate of [null, plan.rate]) {
            const label = `${server} C=${conns} ${rate ? `@${rate}/s` : 'max'}`;
            const args = ['--url', s.url, '--conns', String(conns), '--duration', String(plan.seconds), '--server-pid', String(s.pid), '--label', label];
            if (rate) args.push('--rate', String(rate));
            // Endpoints differ per run so that reads hit the models of this run.
            args.push('--endpoint', `/api/load_${conns}_${rate ? 'rate' : 'max'}`);
            let report;
            try {
              report = await loadgen(args);
            } catch (e) {
              errors.push({ run: label, message: e.message });
              log(`  ${label}: ERROR ${e.message}`);
              continue;
            }
            report.server = server;
            runs.push(report);
            log(
              `  ${label.padEnd(24)} ${String(Math.round(report.ops_per_s)).padStart(7)} ops/s  p50 ${report.p50_ms} ms  p99 ${report.p99_ms} ms  ` +
                `RSS ${Math.round((report.server_rss_kib_end || 0) / 1024)} MiB  errors ${report.errors + report.connect_errors}`,
            );
            if (report.exitCode !== 0 || report.errors > 0 || report.connect_errors > 0) {
              errors.push({ run: label, message: `errors ${report.errors}, connect errors ${report.connect_errors}: ${report.failure_sample || report.connect_error_sample || 'exit ' + report.exitCode}` });
            }
          }
        } finally {
          await s.stop();
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { runs, errors };
}
