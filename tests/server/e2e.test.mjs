// End to end in headless Chromium: the demo app served by the Rust server, driven like a
// person would (add, edit, toggle, delete, clear completed), then reloaded, then the server
// restarted on the same database. Run once per transport: the WebSocket client with ack
// replies, with event replies, and the original XHR Backbone.sync against the REST twin.
// All three must leave the same todos behind.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { repo, startServer, tempDir, removeDir } from './server.mjs';

const CHROMIUM_ARGS = ['--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const WASM = join(repo, 'www', 'pkg', 'backbone_socket_sync_bg.wasm');

let browser;
const dirs = [];

before(async () => {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  dirs.forEach(removeDir);
});

// Opens the app and waits for its first fetch; page errors fail the test.
async function open(page, url) {
  await page.goto(url);
  await page.waitForSelector('#todoapp[data-ready="true"]', { timeout: 15000 });
}

// Waits until no sync is in flight.
async function settled(page) {
  await page.waitForFunction(() => document.querySelector('#todoapp').dataset.pending === '0', null, { timeout: 15000 });
}

// What the list shows: [{title, done}] in order.
function shown(page) {
  return page.$$eval('#todo-list li.todo', (items) =>
    items.map((li) => ({ title: li.querySelector('.title').textContent, done: li.classList.contains('done') })));
}

async function counts(page) {
  return {
    left: Number(await page.getAttribute('#todo-count', 'data-count')),
    done: Number(await page.getAttribute('#done-count', 'data-count')),
  };
}

async function add(page, title) {
  const before = await page.locator('#todo-list li.todo').count();
  await page.fill('#new-todo', title);
  await page.press('#new-todo', 'Enter');
  await page.waitForFunction((n) => document.querySelectorAll('#todo-list li.todo').length === n, before + 1);
}

function item(page, title) {
  return page.locator('#todo-list li.todo', { has: page.locator('.title', { hasText: title }) });
}

// Drives the whole scenario over one transport; returns what was finally stored.
async function scenario(query) {
  const dir = tempDir();
  dirs.push(dir);
  const db = join(dir, 'e2e.sqlite3');
  let server = await startServer({ db });
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  // Which transport really carried the requests: WebSockets opened, XHRs to the api.
  let sockets = 0;
  let xhrs = 0;
  page.on('websocket', () => sockets++);
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/') && ['xhr', 'fetch'].includes(r.resourceType())) xhrs++;
  });
  try {
    await open(page, server.url + '/' + query);
    assert.equal(await page.locator('#todo-list li.todo').count(), 0);

    for (const title of ['buy milk', 'walk the dog', 'write tests', 'call mum']) await add(page, title);
    // Edit (a full update): double-click, type, Enter.
    await item(page, 'walk the dog').locator('.title').dblclick();
    await item(page, 'walk the dog').locator('.edit').fill('walk the dog twice');
    await item(page, 'walk the dog').locator('.edit').press('Enter');
    // Toggle (a patch) and delete.
    await item(page, 'buy milk').locator('.toggle').click();
    await item(page, 'call mum').locator('.toggle').click();
    await item(page, 'write tests').locator('.destroy').click();
    await settled(page);

    const expected = [
      { title: 'buy milk', done: true },
      { title: 'walk the dog twice', done: false },
      { title: 'call mum', done: true },
    ];
    assert.deepEqual(await shown(page), expected);
    assert.deepEqual(await counts(page), { left: 1, done: 2 });

    // Reload: the same todos come back from the server.
    await open(page, server.url + '/' + query);
    assert.deepEqual(await shown(page), expected);

    // Restart the server on the same database (new port) and open the app again.
    await server.stop();
    server = await startServer({ db });
    await open(page, server.url + '/' + query);
    assert.deepEqual(await shown(page), expected);

    // Clear completed, then mark all as complete.
    await page.click('#clear-completed');
    await settled(page);
    await page.waitForFunction(() => document.querySelectorAll('#todo-list li.todo').length === 1);
    await page.click('#toggle-all');
    await settled(page);
    await page.waitForFunction(() => document.querySelector('#done-count').dataset.count === '1');
    const final = [{ title: 'walk the dog twice', done: true }];
    assert.deepEqual(await shown(page), final);
    await open(page, server.url + '/' + query);
    assert.deepEqual(await shown(page), final);
    assert.deepEqual(await counts(page), { left: 0, done: 1 });

    assert.deepEqual(errors, []);
    if (query.includes('transport=ajax')) {
      assert.equal(sockets, 0, 'no WebSocket in XHR mode');
      assert.ok(xhrs > 10, `all requests over XHR (${xhrs})`);
    } else {
      assert.ok(sockets >= 3, `one WebSocket per page load (${sockets})`);
      assert.equal(xhrs, 0, 'no XHR in socket mode');
    }
    const stored = await (await fetch(server.url + '/api/todos')).json();
    return stored.map(({ title, done }) => ({ title, done }));
  } finally {
    await page.close();
    await server.stop();
  }
}

const results = {};

test('the demo over the WebSocket client, ack replies', { skip: !existsSync(WASM) && 'www/pkg not built (scripts/build-client.sh)' }, async () => {
  results.ack = await scenario('');
  assert.equal(results.ack.length, 1);
});

test('the demo over the WebSocket client, event replies', { skip: !existsSync(WASM) && 'www/pkg not built (scripts/build-client.sh)' }, async () => {
  results.event = await scenario('?replies=event');
  assert.deepEqual(results.event, results.ack);
});

test('the same demo over XHR (Backbone.ajaxSync) against the REST twin', async () => {
  results.ajax = await scenario('?transport=ajax');
  assert.deepEqual(results.ajax, [{ title: 'walk the dog twice', done: true }]);
  if (results.ack) assert.deepEqual(results.ajax, results.ack);
});
