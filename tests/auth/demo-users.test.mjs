// Two users side by side in headless Chromium: the demo app served by the Rust server started
// with --demo-tokens, two pages signed in as alice and two as bob, all live. Each user's pages
// show that user's todos, and a todo added in one of them appears live in the other, and never
// in the other user's. A page with no user shows the "sign in as" box and signs in through it;
// the XHR transport sends the token too. (A page whose token expires and reconnects with a
// fresh one: token-expiry.test.mjs; the XHR fallback's token: fallback-auth.test.mjs.)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { repo, startServer, tempDir, removeDir } from '../server/server.mjs';

const CHROMIUM_ARGS = ['--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const WASM = join(repo, 'www', 'pkg', 'backbone_socket_sync_bg.wasm');
const skip = !existsSync(WASM) && 'www/pkg not built (scripts/build-client.sh)';

let browser;
let server;
let dir;

before(async () => {
  if (skip) return;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  dir = tempDir();
  server = await startServer({ db: join(dir, 'users.sqlite3'), args: ['--demo-tokens'] });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) removeDir(dir);
});

// Opens the demo at `query`; waits until it is `ready` ('true', or 'signin' for no user).
async function open(query, ready = 'true') {
  const page = await browser.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  await page.goto(`${server.url}/${query}`);
  await page.waitForSelector(`#todoapp[data-ready="${ready}"]`, { timeout: 15000 });
  return page;
}

// The titles the page shows, in order.
function titles(page) {
  return page.$$eval('#todo-list li.todo .title', (items) => items.map((t) => t.textContent));
}

// Waits until the page shows exactly `expected`.
async function shows(page, expected, what) {
  try {
    await page.waitForFunction(
      (want) => JSON.stringify([...document.querySelectorAll('#todo-list li.todo .title')].map((t) => t.textContent)) === want,
      JSON.stringify(expected), { timeout: 15000 });
  } catch (e) {
    assert.deepEqual(await titles(page), expected, `${what}: ${e.message}`);
  }
}

async function add(page, title) {
  const before = await page.locator('#todo-list li.todo').count();
  await page.fill('#new-todo', title);
  await page.press('#new-todo', 'Enter');
  await page.waitForFunction((n) => document.querySelectorAll('#todo-list li.todo').length === n, before + 1);
  await page.waitForFunction(() => document.querySelector('#todoapp').dataset.pending === '0');
}

async function token(sub) {
  const response = await fetch(`${server.url}/_bss/demo-token`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ sub }),
  });
  return (await response.json()).token;
}

test('two users, two live pages each: each sees only their own todos', { skip }, async () => {
  const [alice1, alice2, bob1, bob2] = await Promise.all([
    open('?user=alice'), open('?user=alice'), open('?user=bob&replies=event'), open('?user=bob'),
  ]);
  assert.equal(await alice1.textContent('#signed-in'), 'signed in as alice');
  assert.equal(await bob1.textContent('#signed-in'), 'signed in as bob');

  await add(alice1, 'alice: milk');
  await add(bob1, 'bob: bread');
  await add(alice2, 'alice: eggs');
  await add(bob2, 'bob: tea');
  // Live within a user, never across users. Each page's own last write came after the other
  // user's, so by the time a page shows it, a leaked broadcast would have been shown too.
  await shows(alice1, ['alice: milk', 'alice: eggs'], 'alice 1');
  await shows(alice2, ['alice: milk', 'alice: eggs'], 'alice 2');
  await shows(bob1, ['bob: bread', 'bob: tea'], 'bob 1');
  await shows(bob2, ['bob: bread', 'bob: tea'], 'bob 2');
  await add(bob2, 'bob: jam');
  await shows(bob1, ['bob: bread', 'bob: tea', 'bob: jam'], 'bob 1 after jam');
  await add(alice2, 'alice: figs');
  await shows(alice1, ['alice: milk', 'alice: eggs', 'alice: figs'], 'alice 1 after figs');
  assert.deepEqual(await titles(bob2), ['bob: bread', 'bob: tea', 'bob: jam']);

  // A delete in one of alice's pages disappears from the other.
  await alice1.locator('#todo-list li.todo', { has: alice1.locator('.title', { hasText: 'alice: eggs' }) })
    .locator('.destroy').click({ force: true });
  await shows(alice2, ['alice: milk', 'alice: figs'], 'alice 2 after the delete');

  // The REST twin agrees, per user; without a token it refuses.
  const stored = async (sub) => (await (await fetch(`${server.url}/api/todos`, {
    headers: { Authorization: `Bearer ${await token(sub)}` },
  })).json()).map((m) => m.title);
  assert.deepEqual(await stored('alice'), ['alice: milk', 'alice: figs']);
  assert.deepEqual(await stored('bob'), ['bob: bread', 'bob: tea', 'bob: jam']);
  assert.equal((await fetch(`${server.url}/api/todos`)).status, 401);

  // The XHR transport sends the token as a Bearer header.
  const xhr = await open('?user=bob&transport=ajax');
  await shows(xhr, ['bob: bread', 'bob: tea', 'bob: jam'], 'bob over XHR');
  await add(xhr, 'bob: by xhr');
  await shows(bob1, ['bob: bread', 'bob: tea', 'bob: jam', 'bob: by xhr'], 'bob 1 hears the XHR write');

  for (const page of [alice1, alice2, bob1, bob2, xhr]) {
    assert.deepEqual(page.errors, []);
    await page.close();
  }
});

test('a page with no user shows the sign-in box and signs in through it', { skip }, async () => {
  const page = await open('', 'signin');
  assert.equal(await page.isVisible('#signin'), true);
  assert.deepEqual(await titles(page), []);
  await page.fill('#user', 'carol');
  await page.click('#signin button');
  await page.waitForSelector('#todoapp[data-ready="true"]', { timeout: 15000 });
  assert.equal(new URL(page.url()).searchParams.get('user'), 'carol');
  assert.equal(await page.textContent('#signed-in'), 'signed in as carol');
  await add(page, 'carol: first');
  assert.deepEqual(await titles(page), ['carol: first']);
  assert.deepEqual(page.errors, []);
  await page.close();
});
