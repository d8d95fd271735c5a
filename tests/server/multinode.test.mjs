// Two demo pages on two server nodes stay in step (issue 9): a throwaway PostgreSQL and Redis
// (tests/support/services.mjs), two bss-server nodes on that one database and adapter, the
// demo app open on node A in one page and on node B in another, in headless Chromium. Todos
// created, edited, ticked and deleted on either page appear the same on the other, and the
// REST twin of either node agrees. Missing postgres or redis binaries fail the test.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { repo, startServer } from './server.mjs';
import { startPostgres, startRedis } from '../support/services.mjs';

const CHROMIUM_ARGS = ['--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const WASM = join(repo, 'www', 'pkg', 'backbone_socket_sync_bg.wasm');
const skip = !existsSync(WASM) && 'www/pkg not built (scripts/build-client.sh)';

let browser;
let pg;
let redis;
let nodes = [];

before(async () => {
  if (skip) return;
  pg = await startPostgres();
  redis = await startRedis();
  const db = pg.createDatabase('pages');
  for (let i = 0; i < 2; i++) nodes.push(await startServer({ db, args: ['--adapter', redis.url] }));
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  for (const node of nodes) await node.stop();
  await redis?.stop();
  await pg?.stop();
});

async function open(node) {
  const page = await browser.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  await page.goto(node.url);
  await page.waitForSelector('#todoapp[data-ready="true"]', { timeout: 15000 });
  return page;
}

// What a page shows: [title, done] per todo, in order.
function shown(page) {
  return page.$$eval('#todo-list li.todo', (items) =>
    items.map((li) => [li.querySelector('.title').textContent, li.classList.contains('done')]));
}

// Waits until `page` shows exactly `expected`.
async function shows(page, expected, what) {
  try {
    await page.waitForFunction((want) => JSON.stringify([...document.querySelectorAll('#todo-list li.todo')]
      .map((li) => [li.querySelector('.title').textContent, li.classList.contains('done')])) === want,
    JSON.stringify(expected), { timeout: 15000 });
  } catch (e) {
    assert.deepEqual(await shown(page), expected, `${what}: ${e.message}`);
  }
}

// Waits until every write the page made is answered.
function settled(page) {
  return page.waitForFunction(() => document.querySelector('#todoapp').dataset.pending === '0');
}

function item(page, title) {
  return page.locator('#todo-list li.todo', { has: page.locator('.title', { hasText: title }) });
}

async function add(page, title) {
  await page.fill('#new-todo', title);
  await page.press('#new-todo', 'Enter');
  await item(page, title).waitFor();
  await settled(page);
}

async function rename(page, from, to) {
  await item(page, from).locator('.title').dblclick();
  await item(page, from).locator('.edit').fill(to);
  await item(page, from).locator('.edit').press('Enter');
  await item(page, to).waitFor();
  await settled(page);
}

async function tick(page, title) {
  await item(page, title).locator('.toggle').click();
  await page.waitForFunction((t) => [...document.querySelectorAll('#todo-list li.todo.done .title')]
    .some((e) => e.textContent === t), title);
  await settled(page);
}

async function remove(page, title) {
  await item(page, title).locator('.destroy').click({ force: true });
  await item(page, title).waitFor({ state: 'detached' });
  await settled(page);
}

test('two demo pages on two nodes stay in step', { skip }, async () => {
  const [a, b] = nodes;
  assert.notEqual(a.port, b.port);
  const onA = await open(a);
  const onB = await open(b);

  await add(onA, 'milk (A)');
  await shows(onB, [['milk (A)', false]], 'B hears A\'s create');
  await add(onB, 'bread (B)');
  await shows(onA, [['milk (A)', false], ['bread (B)', false]], 'A hears B\'s create');

  await rename(onB, 'milk (A)', 'oat milk (B)');
  await shows(onA, [['oat milk (B)', false], ['bread (B)', false]], 'A hears B\'s edit');
  await tick(onA, 'bread (B)');
  await shows(onB, [['oat milk (B)', false], ['bread (B)', true]], 'B hears A\'s patch');

  await add(onA, 'eggs (A)');
  await remove(onB, 'oat milk (B)');
  const expected = [['bread (B)', true], ['eggs (A)', false]];
  await shows(onA, expected, 'A hears B\'s delete');
  await shows(onB, expected, 'B after its delete');

  // Both nodes' REST twins read the same store.
  for (const node of nodes) {
    const stored = await (await fetch(`${node.url}/api/todos`)).json();
    assert.deepEqual(stored.map((m) => [m.title, m.done]), expected);
  }
  for (const page of [onA, onB]) {
    assert.deepEqual(page.errors, []);
    await page.close();
  }
});
