// The load-and-abuse test at the full scale (issue 11): server/tests/abuse.rs with
// ABUSE_SCALE=full against the release server, each abuse applied on loopback for a bounded
// time while a well-behaved client measures its p99 (against a quiet phase right before each
// abuse). Resolves to the test's table (abuse, bound that held, victim p99 quiet → during,
// server peak RSS), whether the test's assertions held, and the end of its output.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { repoRoot, track } from './servers.mjs';

export function runAbuse({ scale = 'full', log = console.log } = {}) {
  const bin = path.join(repoRoot, 'target/release/bss-server');
  // The test process holds thousands of sockets itself: its open-files limit is raised first.
  const script = 'ulimit -n "$(ulimit -Hn)"; exec cargo test -q -p backbone-socket-sync-server --test abuse -- --ignored --nocapture';
  const child = track(
    spawn('bash', ['-c', script], {
      cwd: repoRoot,
      env: { ...process.env, ABUSE_SCALE: String(scale), BSS_SERVER_BIN: bin, RUST_BACKTRACE: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let out = '';
  const take = (chunk) => {
    out += chunk;
    for (const line of String(chunk).split('\n')) if (line.startsWith('abuse ') && !line.startsWith('abuse table')) log(`  ${line}`);
  };
  child.stdout.on('data', take);
  child.stderr.on('data', (chunk) => {
    out += chunk;
  });
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      const match = /abuse table:\n([\s\S]*?)\nend of abuse table/.exec(out);
      const victim = /victim: .*/.exec(out)?.[0];
      resolve({
        scale,
        ok: code === 0,
        table: match ? match[1] : null,
        victim,
        tail: out.split('\n').slice(-40).join('\n'),
      });
    });
  });
}
