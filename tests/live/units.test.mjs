// Unit tests of live.mjs in Node, with real Backbone collections and a
// small in-process socket double that records what is emitted and lets the test deliver
// events (the browser tests run the same code against the real server).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import Backbone from 'backbone';
import { createLive } from '../../www/live.mjs';

// The subset of the entry's `socket` that live.mjs uses.
function socketDouble() {
  const listeners = new Map();
  const socket = {
    connected: false,
    emitted: [],
    on(name, fn) {
      listeners.set(name, [...(listeners.get(name) || []), { fn, once: false }]);
      return socket;
    },
    once(name, fn) {
      listeners.set(name, [...(listeners.get(name) || []), { fn, once: true }]);
      return socket;
    },
    emit(event, ...args) {
      socket.emitted.push([event, ...args]);
      return socket;
    },
    // Delivers a server event (or a lifecycle event) to the listeners.
    deliver(name, ...args) {
      const list = listeners.get(name) || [];
      listeners.set(name, list.filter((l) => !l.once));
      for (const l of list) l.fn(...args);
    },
  };
  return socket;
}

function todos(url = '/api/todos') {
  const fetched = [];
  const Todos = Backbone.Collection.extend({ url });
  const collection = new Todos([{ id: 1, title: 'a' }, { id: 2, title: 'b' }]);
  // The catch-up read goes through the collection's sync, as fetch() does.
  collection.sync = (method, c, options) => fetched.push([method, options.live]);
  collection.fetched = fetched;
  return collection;
}

test('broadcasts are applied with add, set and the destroy event', () => {
  const socket = socketDouble();
  socket.connected = true;
  const { live } = createLive(socket, () => 'ack', () => {});
  const c = live(todos());
  const events = [];
  c.on('all', (name) => events.push(name));

  const change = (item) => ({ endPoint: '/api/todos', collection: '/api/todos', item });
  socket.deliver('created', change({ id: 3, title: 'c' }));
  socket.deliver('patched', change({ id: 1, title: 'a', done: true }));
  socket.deliver('updated', change({ id: 9, title: 'new to us' })); // unknown: added
  socket.deliver('deleted', change({ id: 2 }));
  socket.deliver('deleted', change({ id: 42 })); // unknown: nothing
  socket.deliver('created', { endPoint: '/api/other', collection: '/api/other', item: { id: 5 } });
  socket.deliver('created', change('not an object'));
  socket.deliver('created', null);

  assert.deepEqual(c.toJSON(), [
    { id: 1, title: 'a', done: true },
    { id: 3, title: 'c' },
    { id: 9, title: 'new to us' },
  ]);
  // As after model.destroy(): the collection removes the model while handling 'destroy',
  // before the 'destroy' itself reaches the collection's own listeners.
  assert.deepEqual(events, ['add', 'update', 'change:done', 'change', 'add', 'update', 'remove', 'update', 'destroy']);
});

test('subscribe in both reply modes, re-subscribe and re-fetch only after a reconnection', () => {
  for (const mode of ['ack', 'event']) {
    const socket = socketDouble();
    let opened = 0;
    const { live, unlive } = createLive(socket, () => mode, () => opened++);
    const a = live(todos('http://127.0.0.1:3000/api/todos/?x=1'));
    const b = live(todos('/api/todos'));
    assert.equal(opened, 1, 'not connected: the connection is opened, the connect listener joins');
    assert.deepEqual(socket.emitted, []);

    const answer = () => {
      const [event, arg, ack] = socket.emitted.at(-1);
      if (mode === 'ack') ack(null, { endPoint: '/api/todos' });
      else socket.deliver(`${event}:${arg.signature.endPoint}`, { endPoint: '/api/todos' });
    };
    socket.connected = true;
    socket.deliver('connect');
    assert.equal(socket.emitted.length, 1, 'one room, one subscribe');
    assert.deepEqual(socket.emitted[0].slice(0, 2), ['subscribe', { signature: { endPoint: 'http://127.0.0.1:3000/api/todos/?x=1' } }]);
    assert.equal(typeof socket.emitted[0][2], mode === 'ack' ? 'function' : 'undefined');
    answer();
    assert.deepEqual([a.fetched, b.fetched], [[], []], 'the first join fetches nothing');

    socket.deliver('connect'); // a reconnection
    answer();
    assert.deepEqual([a.fetched, b.fetched], [[['read', true]], [['read', true]]]);

    unlive(a);
    assert.equal(socket.emitted.length, 2, 'b still uses the room');
    unlive(b);
    assert.deepEqual(socket.emitted[2].slice(0, 2), ['unsubscribe', { signature: { endPoint: 'http://127.0.0.1:3000/api/todos/?x=1' } }]);
    socket.deliver('created', { collection: '/api/todos', item: { id: 7 } });
    assert.equal(b.get(7), undefined, 'no longer live');
  }
});

test('a refused subscription is reported on the collection and fetches nothing', () => {
  const socket = socketDouble();
  socket.connected = true;
  const { live } = createLive(socket, () => 'ack', () => {});
  const c = live(todos());
  const errors = [];
  c.on('error', (collection, error, options) => errors.push([error, options]));
  socket.emitted[0][2]({ status: 400, message: 'subscribe needs a collection endPoint' });
  assert.deepEqual(errors, [[{ status: 400, message: 'subscribe needs a collection endPoint' }, { live: true }]]);
  assert.throws(() => live(new Backbone.Collection()), /"url" property or function must be specified/);
});

test('broadcasts arriving during a catch-up fetch are held and applied after its answer', async () => {
  const socket = socketDouble();
  socket.connected = true;
  const { live } = createLive(socket, () => 'ack', () => {});
  const c = todos();
  const answers = [];
  c.sync = (method, collection, options) => answers.push((models) => options.success(models));
  live(c);
  socket.emitted.at(-1)[2](null, {}); // first join: no fetch
  socket.deliver('connect'); // reconnected
  socket.emitted.at(-1)[2](null, {});
  assert.equal(answers.length, 1, 'a catch-up fetch is out');
  socket.deliver('connect'); // and again, while it is out
  socket.emitted.at(-1)[2](null, {});
  assert.equal(answers.length, 1, 'one at a time');

  // Read before the patch was committed, answered after its broadcast arrived.
  socket.deliver('patched', { collection: '/api/todos', item: { id: 1, title: 'newer' } });
  assert.equal(c.get(1).get('title'), 'a', 'held');
  answers[0]([{ id: 1, title: 'older' }]);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(c.get(1).get('title'), 'newer', 'applied after the answer, not undone by it');
  assert.equal(c.get(2), undefined, 'the fetch removed what the server no longer has');
  assert.equal(answers.length, 2, 'the reconnection during the fetch fetches once more');
  answers[1]([{ id: 1, title: 'newer' }]);
  await new Promise((r) => setTimeout(r, 0));
  socket.deliver('created', { collection: '/api/todos', item: { id: 3 } });
  assert.ok(c.get(3), 'live again once nothing is out');
});

test("the page's own writes during a catch-up read keep the state their replies gave them", async () => {
  const socket = socketDouble();
  socket.connected = true;
  const { live } = createLive(socket, () => 'ack', () => {});
  const c = todos();
  const answers = [];
  c.sync = (method, collection, options) => answers.push((models) => options.success(models));
  live(c);
  socket.emitted.at(-1)[2](null, {});
  socket.deliver('connect');
  socket.emitted.at(-1)[2](null, {});
  // While the read is out, this page creates #3 and patches #1 (both answered); the read's
  // answer was taken before either, and brings #4, made elsewhere while this page was away.
  const mine = c.add({ id: 3, title: 'mine' });
  mine.trigger('sync', mine, {}, {});
  c.get(1).set({ title: 'a, patched here' });
  c.get(1).trigger('sync', c.get(1), {}, {});
  answers[0]([{ id: 1, title: 'a' }, { id: 2, title: 'b' }, { id: 4, title: 'from elsewhere' }]);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(c.toJSON().sort((x, y) => x.id - y.id), [
    { id: 1, title: 'a, patched here' },
    { id: 2, title: 'b' },
    { id: 3, title: 'mine' },
    { id: 4, title: 'from elsewhere' },
  ]);
  assert.equal(answers.length, 1, 'no second read');
  // An untouched model the answer lacks is removed, as fetch() would.
  socket.deliver('connect');
  socket.emitted.at(-1)[2](null, {});
  answers[1]([{ id: 1, title: 'a, patched here' }, { id: 3, title: 'mine' }]);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(c.pluck('id').sort(), [1, 3]);
});

test("a create still unanswered when the catch-up read already holds it is not kept twice", async () => {
  const socket = socketDouble();
  socket.connected = true;
  const { live, unlive } = createLive(socket, () => 'ack', () => {});
  const c = todos();
  const answers = [];
  c.sync = (method, collection, options) => answers.push((models) => options.success(models));
  live(c);
  socket.emitted.at(-1)[2](null, {});
  socket.deliver('connect');
  socket.emitted.at(-1)[2](null, {});
  // While the catch-up read is out, this page creates a model; the server commits it as #3,
  // the read already holds #3, and the read is answered before the create's own reply.
  const mine = c.add({ title: 'mine' });
  const removed = [];
  c.on('remove', (model) => removed.push(model));
  answers[0]([{ id: 1, title: 'a' }, { id: 2, title: 'b' }, { id: 3, title: 'mine' }]);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(c.length, 4, "the read's copy of #3 and the page's model, still without its id");
  mine.set({ id: 3 }); // the create's reply
  assert.deepEqual(c.pluck('id'), [1, 2, 3], 'one #3');
  assert.equal(c.get(3), mine, "the page's own model is the one kept, and found by id");
  assert.equal(removed.length, 1, "the read's copy was removed (with a remove event)");
  assert.notEqual(removed[0], mine);
  assert.equal(mine.collection, c);
  // Once unlive, nothing is de-duplicated any more.
  unlive(c);
  c.add({ title: 'later' }).set({ id: 3 });
  assert.equal(c.filter((m) => m.id === 3).length, 2);
});
