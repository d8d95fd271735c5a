// The TypeScript types (www/backbone-socket-sync.d.ts): a consumer written against the
// documented API must compile under --strict, and misuse must not. Runs when the
// `typescript` package is installed (a dev dependency to add); skipped, and says so, if not.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from '../support/harness.mjs';

let ts = null;
try {
  ts = (await import('typescript')).default;
} catch {
  // left null: the test below is skipped
}

const consumer = `
import BSS, { install, connect, socket, sync, ready, usesAjax, type SyncPromise, type SyncError } from './backbone-socket-sync';
const Backbone = { sync: (m: string, model: any, o?: any) => null as any };
const installed: typeof Backbone.sync = install(Backbone, { url: 'ws://127.0.0.1:3000', replies: 'event', timeout: 5000 });
const s = connect({ namespace: '/admin', auth: { token: 'x' }, reconnectionAttempts: 3 });
s.on('disconnect', (reason) => { const r: string = reason; });
s.on('custom', (a: number, b: string) => {}).emit('echo', 1, 'two', (x: unknown) => {}).off('custom');
const p: SyncPromise = sync('read', {}, {});
p.done(() => {}).fail((e: SyncError) => { const n: number = e.status; }).always(() => {});
p.abort();
ready.then(() => socket.connected && socket.id?.toUpperCase());
const b: boolean = usesAjax({});
BSS.install(Backbone);
window.BackboneSocketSync.ready.then((api) => api.connect({}));
`;

/** Type-checks each source against the .d.ts in one program; returns the diagnostics of each. */
function check(sources) {
  const dir = mkdtempSync(path.join(tmpdir(), 'bss-types-'));
  try {
    copyFileSync(path.join(repoRoot, 'www/backbone-socket-sync.d.ts'), path.join(dir, 'backbone-socket-sync.d.ts'));
    const files = sources.map((source, i) => {
      const file = path.join(dir, `use${i}.ts`);
      writeFileSync(file, `${source}\nexport {};\n`);
      return file;
    });
    const program = ts.createProgram(files, {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2020,
      module: ts.ModuleKind.ES2020,
      moduleResolution: ts.ModuleResolutionKind.Node10,
      lib: ['lib.es2020.d.ts', 'lib.dom.d.ts'],
    });
    const all = ts.getPreEmitDiagnostics(program);
    const other = all.filter((d) => !files.includes(d.file?.fileName));
    assert.deepEqual(other.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')), [], 'the .d.ts itself is clean');
    return files.map((f) => all.filter((d) => d.file?.fileName === f).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the documented API type-checks under --strict; misuse does not', { skip: ts ? false : 'typescript is not installed' }, () => {
  const [ok, badReplies, badEmit, badInstall] = check([
    consumer,
    `${consumer}\nconnect({ replies: 'polling' });`,
    `${consumer}\nsocket.emit();`,
    `${consumer}\ninstall({});`,
  ]);
  assert.deepEqual(ok, []);
  assert.equal(badReplies.length, 1, 'replies is "ack" | "event"');
  assert.equal(badEmit.length, 1, 'emit needs an event name');
  assert.equal(badInstall.length, 1, 'install needs something with a sync');
});
