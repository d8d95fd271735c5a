//     app.js — the demo todo app for backbone-socket-sync.
//
// A plain Backbone app: nothing in it knows how models reach the server. The script tag
// before it replaced `Backbone.sync` with the WebSocket one; this file only chooses, from
// the page's query string, how that sync talks:
//
//     /                     socket.io, replies through acks (the default)
//     /?replies=event       socket.io, replies as `<method>:<endPoint>` events
//     /?transport=ajax      the original XHR sync against the REST twin
//     /?user=alice          signed in as alice (only when the server runs with --demo-tokens)
//
// Every write waits for the server (`wait: true`), so what the page shows is what is stored.

(function () {
  'use strict';

  var params = new URLSearchParams(location.search);
  var transport = params.get('transport') === 'ajax' ? 'ajax' : 'socket';
  var replies = params.get('replies') === 'event' ? 'event' : 'ack';

  // `ajaxSync: true` on the model and collection (below) makes the installed sync hand them
  // to the original XHR one; assigning `Backbone.sync` here would not last, since the shim
  // installs the module's sync once the wasm is loaded.
  var ajax = transport === 'ajax';

  // Models
  // ------

  // One todo: a title, whether it is done, and its place in the list.
  var Todo = Backbone.Model.extend({
    ajaxSync: ajax,

    defaults: function () {
      return { title: '', done: false, order: 0 };
    },

    toggle: function () {
      return this.save({ done: !this.get('done') }, { patch: true, wait: true });
    }
  });

  // The list, kept in the order the todos were added.
  var TodoList = Backbone.Collection.extend({
    model: Todo,
    url: '/api/todos',
    ajaxSync: ajax,
    comparator: 'order',

    done: function () {
      return this.where({ done: true });
    },

    remaining: function () {
      return this.where({ done: false });
    },

    nextOrder: function () {
      return this.length ? this.last().get('order') + 1 : 1;
    }
  });

  var todos = new TodoList();

  // Pending requests
  // ----------------

  // How many syncs are in flight, shown on the page (`data-pending`) so that people and
  // tests can tell when every write has been answered. Every model's `request` event
  // bubbles up to the collection, so one listener sees them all.
  var pending = 0;
  var app = document.getElementById('todoapp');

  function track(promise) {
    pending += 1;
    app.dataset.pending = pending;
    var settle = function () {
      pending -= 1;
      app.dataset.pending = pending;
    };
    if (promise && promise.then) promise.then(settle, settle);
    else settle();
    return promise;
  }

  function showError(model, xhr) {
    var detail = (xhr && xhr.responseJSON && xhr.responseJSON.message) || (xhr && xhr.statusText) || 'error';
    $('#status').text('Could not sync: ' + detail).addClass('error');
  }

  // Views
  // -----

  // One `<li>` per todo: a checkbox, the title (double-click to edit) and a delete button.
  var TodoView = Backbone.View.extend({
    tagName: 'li',
    className: 'todo',

    events: {
      'change .toggle': 'toggle',
      'dblclick .title': 'edit',
      'click .destroy': 'clear',
      'keydown .edit': 'onEditKey',
      'blur .edit': 'close'
    },

    initialize: function () {
      this.listenTo(this.model, 'change', this.render);
      this.listenTo(this.model, 'destroy', this.remove);
      this.listenTo(this.model, 'remove', this.remove); // also when a re-fetch drops it
    },

    render: function () {
      var id = this.model.id;
      this.$el.attr('data-id', id).toggleClass('done', !!this.model.get('done'));
      this.$el.html(
        '<input class="toggle" type="checkbox" aria-label="done">' +
        '<label class="title"></label>' +
        '<input class="edit" aria-label="title">' +
        '<button class="destroy" type="button" aria-label="delete">×</button>'
      );
      this.$('.toggle').prop('checked', !!this.model.get('done'));
      this.$('.title').text(this.model.get('title'));
      return this;
    },

    toggle: function () {
      this.model.toggle();
    },

    edit: function () {
      this.$el.addClass('editing');
      this.$('.edit').val(this.model.get('title')).focus();
    },

    onEditKey: function (e) {
      if (e.key === 'Enter') this.close();
      if (e.key === 'Escape') {
        this.$el.removeClass('editing');
        this.render();
      }
    },

    // Saves the edited title (a full update), or deletes the todo when it was emptied.
    close: function () {
      if (!this.$el.hasClass('editing')) return;
      var title = this.$('.edit').val().trim();
      this.$el.removeClass('editing');
      if (!title) return this.clear();
      if (title !== this.model.get('title')) this.model.save({ title: title }, { wait: true });
    },

    clear: function () {
      this.model.destroy({ wait: true });
    }
  });

  // The whole app: the new-todo field, the list, the counts and the footer buttons.
  var AppView = Backbone.View.extend({
    el: '#todoapp',

    events: {
      'keydown #new-todo': 'createOnEnter',
      'click #clear-completed': 'clearCompleted',
      'change #toggle-all': 'toggleAll'
    },

    initialize: function () {
      this.$input = this.$('#new-todo');
      this.$list = this.$('#todo-list');
      this.listenTo(todos, 'add', this.addOne);
      this.listenTo(todos, 'reset sort', this.addAll);
      this.listenTo(todos, 'add remove change reset update', this.renderCounts);
      this.listenTo(todos, 'error', showError);
      $('#transport').text(transport === 'ajax' ? 'XHR (REST)' : 'WebSocket (' + replies + ' replies)');
    },

    addOne: function (todo) {
      var view = new TodoView({ model: todo }).render();
      var index = todos.indexOf(todo);
      var next = this.$list.children().eq(index);
      if (next.length) next.before(view.el);
      else this.$list.append(view.el);
    },

    addAll: function () {
      this.$list.empty();
      todos.each(this.addOne, this);
    },

    renderCounts: function () {
      var left = todos.remaining().length;
      var done = todos.done().length;
      $('#footer').prop('hidden', todos.length === 0);
      $('#todo-count').attr('data-count', left).text(left + (left === 1 ? ' item left' : ' items left'));
      $('#done-count').attr('data-count', done).text(done + ' done');
      $('#clear-completed').prop('hidden', done === 0);
      $('#toggle-all').prop('checked', todos.length > 0 && left === 0);
    },

    createOnEnter: function (e) {
      if (e.key !== 'Enter') return;
      var title = this.$input.val().trim();
      if (!title) return;
      this.$input.val('');
      // With `wait: true` the new model joins the collection only once stored, so its
      // request does not bubble up to `todos`: it is tracked here instead.
      track(new Promise(function (resolve) {
        todos.create({ title: title, done: false, order: todos.nextOrder() }, {
          wait: true,
          success: function () { resolve(); },
          error: function (model, xhr) { showError(model, xhr); resolve(); }
        });
      }));
    },

    clearCompleted: function () {
      _.each(todos.done(), function (todo) {
        todo.destroy({ wait: true });
      });
    },

    toggleAll: function () {
      var done = this.$('#toggle-all').prop('checked');
      todos.each(function (todo) {
        if (todo.get('done') !== done) todo.save({ done: done }, { patch: true, wait: true });
      });
    }
  });

  var view = new AppView();
  todos.on('request', function (model, xhr) {
    track(xhr);
  });

  // Demo sign-in
  // ------------

  // A server started with `--demo-tokens` mints a token for any name (`?user=alice`), so two
  // windows can be two users, each with their own todos; it answers 404 here otherwise, and
  // the page stays open to everyone as before. The token goes in the socket's CONNECT
  // (`auth`, a function: a new token at every reconnection, so the page outlives its token's
  // expiry) and, for the XHR sync, in an `Authorization: Bearer` header.
  var user = params.get('user');

  // A token for `user`, also set as the XHR sync's header.
  function mint() {
    return fetch('/_bss/demo-token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ sub: user })
    }).then(function (minted) {
      if (!minted.ok) throw new Error('no token for ' + user);
      return minted.json();
    }).then(function (minted) {
      $('#signed-in').text('signed in as ' + minted.sub);
      $.ajaxSetup({ headers: { Authorization: 'Bearer ' + minted.token } });
      return minted.token;
    });
  }

  function demoToken() {
    return fetch('/_bss/demo-token').then(function (response) {
      if (!response.ok) return null;
      $('#signin').prop('hidden', false);
      $('#user').val(user || '');
      if (!user) return Promise.reject(new Error('sign in'));
      return mint();
    });
  }

  // The socket's `auth`: the token just minted first, then a new one at each reconnection (a
  // failed mint connects without one, and the server's refusal is retried with backoff).
  function authWith(token) {
    return function (cb) {
      if (token) {
        cb({ token: token });
        token = null;
      } else {
        mint().then(function (t) { cb({ token: t }); }, function () { cb({}); });
      }
    };
  }

  $('#signin').on('submit', function (e) {
    e.preventDefault();
    params.set('user', $('#user').val().trim());
    location.search = params.toString();
  });

  // Connects (with the token, if any), makes the list live and loads it.
  function start(token) {
    if (!ajax) BackboneSocketSync.connect(token ? { replies: replies, auth: authWith(token) } : { replies: replies });
    // Other pages' changes appear here as they happen (and are caught up after a reconnection).
    if (!ajax) BackboneSocketSync.live(todos);
    return todos.fetch({ reset: true });
  }

  demoToken().then(start).then(function () {
    app.dataset.ready = 'true';
    view.renderCounts();
  }, function (error) {
    if (error && error.message === 'sign in') {
      app.dataset.ready = 'signin';
      $('#status').text('Sign in (any name) to see your todos.');
      $('#user').focus();
    } else {
      app.dataset.ready = 'error';
    }
  });

  window.todoApp = { todos: todos, transport: transport, replies: replies, user: user };
})();
