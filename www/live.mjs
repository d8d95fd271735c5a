//     live.mjs
//     Live collections for backbone-socket-sync.
//     MIT licence.
//
// A collection made live hears the writes other clients make to its endpoint and applies
// them with Backbone's own methods, so its views update by themselves:
//
//     import { live, unlive } from 'backbone-socket-sync';
//     live(todos);      // sends subscribe {"signature":{"endPoint":"/api/todos"}}
//     unlive(todos);    // sends unsubscribe once no live collection uses that endpoint
//
// The server answers every committed write with one broadcast to the endpoint's room:
// `created`, `updated`, `patched` or `deleted`, carrying `{endPoint, collection, item}`.
// They are applied as
//
//     created            collection.add(item, {merge: true})
//     updated, patched   collection.get(item).set(item)   (add when missing)
//     deleted            model.trigger('destroy', model, collection, options)
//
// so `add`, `change` and `remove` fire as usual; `deleted` goes through the `destroy` event,
// as `model.destroy()` would, which removes the model from every collection holding it and
// tells the views that listen for `destroy`. Every options object carries `live: true`, so
// an app can tell these changes from its own.
//
// The socket (re)joins the rooms on every `connect`. After a connection was lost, it reads
// each live collection again and sets it to the answer (as `fetch()` does: merge, add,
// remove), so the changes made while it was offline show up too. Broadcasts that arrive
// while that read is
// out are held and applied after it, so an answer read before them cannot undo them, and
// models the page itself writes while it is out keep what their own replies say; a create
// of the page's that the read already held is not kept twice. The writer's own socket gets
// no broadcast for its writes: it has its reply.
//
// This file needs only what the entry module hands to `createLive`.

// Collection paths as the server names its rooms: no origin, no query, no trailing slash.
function roomOf(url) {
  let path = String(url);
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(path);
  if (scheme) path = path.slice(scheme[0].length) || '/';
  path = path.replace(/[?#].*$/, '');
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

// The endpoint a collection syncs with, as `Backbone.sync` resolves it.
function endpointOf(collection) {
  const url = typeof collection.url === 'function' ? collection.url() : collection.url;
  if (!url) throw new Error('live(collection): A "url" property or function must be specified');
  return String(url);
}

// **createLive** returns `{live, unlive}` working over `socket` (the entry's socket
// object); `replyMode()` tells how the connection gets its replies (`"ack"` or `"event"`),
// and `open()` opens the connection when none was made yet.
export function createLive(socket, replyMode, open) {
  // room -> {endPoint, collections: Set, joined: whether a connection ever joined it,
  //         held: broadcasts waiting for a catch-up fetch, or null when none is out}
  const rooms = new Map();
  const liveCollections = new Set();
  let hooked = false;

  // Sends `subscribe`/`unsubscribe` for `room`; `done(error)` runs when the server answered.
  function request(event, room, done) {
    const arg = { signature: { endPoint: room.endPoint } };
    const finish = done || function () {};
    if (replyMode() === 'event') {
      socket.once(`${event}:${room.endPoint}`, (reply) => {
        const failed = reply && typeof reply === 'object' && reply.error;
        finish(failed ? reply.error : null);
      });
      socket.emit(event, arg);
    } else {
      socket.emit(event, arg, (error) => finish(error || null));
    }
  }

  // Joins one room and, when a previous connection had joined it (so changes may have been
  // missed in between), fetches its collections again once the server confirmed.
  function join(room) {
    const missed = room.joined;
    request('subscribe', room, (error) => {
      if (error) {
        for (const collection of room.collections) collection.trigger('error', collection, error, { live: true });
        return;
      }
      room.joined = true;
      if (missed) fetchAll(room);
    });
  }

  // Fetches every collection of `room` again, holding the room's broadcasts until all
  // answered, then applies them.
  function fetchAll(room) {
    // One catch-up at a time: a reconnection while one is out fetches again after it, since
    // that answer may have been read before this subscription.
    if (room.held) return void (room.again = true);
    room.held = [];
    room.again = false;
    const fetches = [...room.collections].map(catchUp);
    Promise.allSettled(fetches).then(() => {
      const held = room.held || [];
      room.held = null;
      for (const [event, change] of held) apply(event, change);
      if (room.again && rooms.get(roomOf(room.endPoint)) === room) fetchAll(room);
    });
  }

  // Reads `collection` from the server and sets it to the answer, as `fetch()` would, except
  // for the models the page itself wrote (or added) while the read was out: the answer may
  // have been read before those writes, so they keep the state their own replies gave them.
  function catchUp(collection) {
    const touched = new Set();
    const own = (name, model) => {
      if (model !== collection && (name === 'sync' || name === 'destroy' || name === 'add')) touched.add(model);
    };
    collection.on('all', own);
    return new Promise((resolve) => {
      const done = () => {
        collection.off('all', own);
        resolve();
      };
      const options = { live: true };
      options.success = (resp) => {
        collection.off('all', own);
        const models = [];
        for (const attrs of collection.parse(resp, options) || []) {
          const existing = collection.get(attrs);
          if (!existing || !touched.has(existing)) models.push(attrs);
        }
        for (const model of touched) if (collection.get(model) === model) models.push(model);
        collection.set(models, options);
        collection.trigger('sync', collection, resp, options);
        resolve();
      };
      options.error = done;
      try {
        collection.sync('read', collection, options);
      } catch (e) {
        done();
      }
    });
  }

  // Applies one broadcast to every live collection of its room.
  function apply(event, change) {
    const room = change && rooms.get(roomOf(change.collection));
    if (!room || !change.item || typeof change.item !== 'object') return;
    if (room.held) return void room.held.push([event, change]);
    const options = { live: true };
    for (const collection of [...room.collections]) {
      const model = collection.get(change.item);
      if (event === 'created') {
        collection.add(change.item, { merge: true, live: true });
      } else if (event === 'deleted') {
        if (model) model.trigger('destroy', model, model.collection, options);
      } else if (model) {
        model.set(change.item, options);
      } else {
        collection.add(change.item, options);
      }
    }
  }

  // A create of this page still unanswered when a catch-up read already held it puts that
  // model in twice: the read's copy, then the page's own model once its reply gives it the
  // same id. The page's model is the one its code holds, so the read's copy goes. The
  // collection's index already maps that id to the page's model (so removing the twin by
  // id would remove the wrong one, and would drop the id from the index): the model steps
  // out silently, the twin is removed, and the model is put back in its place.
  function dropTwin(model) {
    if (!model.hasChanged(model.idAttribute) || model.id == null) return;
    const collection = this;
    const twins = collection.filter((other) => other !== model && other.id === model.id);
    if (!twins.length) return;
    const at = collection.models.slice(0, collection.indexOf(model)).filter((m) => !twins.includes(m)).length;
    collection.remove(model, { silent: true });
    collection.remove(twins, { live: true });
    collection.add(model, { silent: true, at });
  }

  // The socket's listeners, added once the first collection goes live.
  function hook() {
    if (hooked) return;
    hooked = true;
    socket.on('connect', () => {
      for (const room of rooms.values()) join(room);
    });
    for (const event of ['created', 'updated', 'patched', 'deleted']) {
      socket.on(event, (change) => apply(event, change));
    }
  }

  // **live** makes `collection` apply the changes other clients make to its endpoint, from
  // now on and after every reconnection. Returns the collection.
  function live(collection) {
    const endPoint = endpointOf(collection);
    const key = roomOf(endPoint);
    hook();
    if (!liveCollections.has(collection)) collection.on('change', dropTwin, collection);
    liveCollections.add(collection);
    let room = rooms.get(key);
    if (room) {
      room.collections.add(collection);
      return collection;
    }
    room = { endPoint, collections: new Set([collection]), joined: false, held: null, again: false };
    rooms.set(key, room);
    // Not connected yet: the `connect` listener joins it.
    if (socket.connected) join(room);
    else open();
    return collection;
  }

  // **unlive** stops applying broadcasts to `collection`; the socket leaves the room once no
  // live collection uses that endpoint. Returns the collection.
  function unlive(collection) {
    if (liveCollections.delete(collection)) collection.off('change', dropTwin, collection);
    for (const [key, room] of rooms) {
      if (!room.collections.delete(collection) || room.collections.size) continue;
      rooms.delete(key);
      if (socket.connected) request('unsubscribe', room);
    }
    return collection;
  }

  return { live, unlive };
}
