// Types of backbone-socket-sync: Backbone.sync over one socket.io WebSocket (Rust/wasm).
// The ES module entry (backbone-socket-sync.mjs) exports what is declared here; the
// script-tag build (backbone-socket-sync.js) sets the global `BackboneSocketSync`.

/** Options of `connect` (and of `install`). Every field is optional. */
export interface ConnectOptions {
  /** `http(s)://` or `ws(s)://` origin of the socket.io server; default the page's origin. `/socket.io/` is appended. */
  url?: string;
  /** socket.io namespace, default `"/"`. */
  namespace?: string;
  /** Payload of the namespace CONNECT packet, e.g. `{token: "…"}`; or a function giving it at
   *  every (re)connection, through its callback or a returned Promise. With a function, a
   *  server's disconnection (a token's expiry) is followed by a reconnection with a fresh one,
   *  and a refused CONNECT is retried; with an object both are final. */
  auth?: object | ((cb: (auth: object) => void) => void | Promise<object>);
  /** How the server answers: with an acknowledgement (default) or by emitting `<method>:<endPoint>[:<ctx>]`. */
  replies?: 'ack' | 'event';
  /** Milliseconds a request may take, default 10000; `options.timeout` of a single call overrides it. */
  timeout?: number;
  /** Requests kept while not connected, default 1000; more fail with statusText "queue full". */
  queueSize?: number;
  /** Reconnect after a lost connection, default true. */
  reconnection?: boolean;
  /** Attempts before giving up, default Infinity. */
  reconnectionAttempts?: number;
  /** First delay between attempts in ms, default 1000. */
  reconnectionDelay?: number;
  /** Largest delay between attempts in ms, default 5000. */
  reconnectionDelayMax?: number;
  /** Jitter of the delays, 0..1, default 0.5. */
  randomizationFactor?: number;
  /** `'auto'`: while the WebSocket cannot be opened, calls go through `Backbone.ajaxSync` (the REST twin); default `'socket'`. */
  transport?: 'socket' | 'auto';
  /** Failed connection attempts in a row before `'auto'` falls back to XHR, default 3. */
  fallbackAfter?: number;
}

/** What `options.error` receives and a failed sync promise rejects with. */
export interface SyncError {
  /** The status the server sent (400, 404, 413, 500…), or 0 for a transport failure. */
  status: number;
  /** "timeout", "abort", "disconnect", "connect_error", "unauthorized" (status 401), "queue full", "protocol error", "error"…, or the server's message. */
  statusText: string;
  /** The server's error object, when it sent one. */
  responseJSON?: unknown;
  /** `responseJSON` as JSON text (set on errors). */
  responseText?: string;
}

/** The value of a sync: a real Promise that is also jqXHR-like. */
export interface SyncPromise<T = any> extends Promise<T> {
  done(fn: (response: T) => void): this;
  fail(fn: (error: SyncError) => void): this;
  always(fn: (responseOrError: T | SyncError) => void): this;
  /** Fails the request with statusText "abort"; a request not yet sent is never sent. */
  abort(): void;
}

/** Lifecycle events of the connection and their listener arguments. */
export interface SocketEvents {
  connect: () => void;
  disconnect: (reason: string) => void;
  connect_error: (error: unknown) => void;
  error: (error: Error) => void;
  reconnect_attempt: (attempt: number) => void;
  reconnect: (attempt: number) => void;
}

/** The connection, also open to the app's own events. The same object across `connect` calls. */
export interface SocketSyncSocket {
  /** Emits an event with JSON arguments; a function as the last argument receives the server's acknowledgement. */
  emit(event: string, ...args: any[]): this;
  on<K extends keyof SocketEvents>(name: K, fn: SocketEvents[K]): this;
  on(name: string, fn: (...args: any[]) => void): this;
  once<K extends keyof SocketEvents>(name: K, fn: SocketEvents[K]): this;
  once(name: string, fn: (...args: any[]) => void): this;
  /** Removes `fn`, or every listener of `name` when `fn` is left out. */
  off(name: string, fn?: (...args: any[]) => void): this;
  /** Disconnects; pending requests fail. `connect()` opens a new connection. */
  close(): this;
  /** A socket whose emits' acknowledgements time out after `ms`: the ack callback then gets an
   *  `Error` first, else `null` and the server's arguments. */
  timeout(ms: number): Pick<SocketSyncSocket, 'emit'>;
  readonly connected: boolean;
  /** socket.io session id of the namespace connection, while connected. */
  readonly id: string | undefined;
}

/** The subset of Backbone that `install` needs. */
export interface BackboneLike {
  sync: (method: string, model: any, options?: any) => any;
  ajaxSync?: (method: string, model: any, options?: any) => any;
}

/** `Backbone.sync` over the socket: `method` is create, read, update, patch or delete. Throws when no url can be found. */
export function sync(method: string, model: any, options?: any): SyncPromise;

/** Opens (or replaces) the connection and returns `socket`. */
export function connect(options?: ConnectOptions): SocketSyncSocket;

/**
 * Installs `sync` as `Backbone.sync`, keeping the original as `Backbone.ajaxSync` for models or
 * collections with `ajaxSync: true`. Connects at once when `options` is given, else on first use.
 */
export function install(Backbone: BackboneLike, options?: ConnectOptions): BackboneLike['sync'];

/** Whether a model (or its collection) has `ajaxSync: true`. */
export function usesAjax(model: any): boolean;

/** A Backbone collection, as far as `live` uses it. */
export interface LiveCollection {
  url: string | (() => string);
}

/**
 * Makes `collection` apply other clients' writes to its endpoint (`created`, `updated`, `patched`,
 * `deleted` broadcasts) with `add` / `set` / the `destroy` event, and fetch again after a reconnection.
 */
export function live<C extends LiveCollection>(collection: C): C;

/** Stops applying broadcasts to `collection`; unsubscribes once no live collection uses its endpoint. */
export function unlive<C extends LiveCollection>(collection: C): C;

/** The connection. */
export const socket: SocketSyncSocket;

/** Resolves once the wasm is loaded (already true when the module has been imported). */
export const ready: Promise<void>;

/** The wasm connection class behind `socket`. */
export const Socket: new (...args: any[]) => unknown;

declare const BackboneSocketSync: {
  install: typeof install;
  connect: typeof connect;
  sync: typeof sync;
  socket: SocketSyncSocket;
  ready: Promise<void>;
  usesAjax: typeof usesAjax;
  live: typeof live;
  unlive: typeof unlive;
  Socket: typeof Socket;
};
export default BackboneSocketSync;

declare global {
  /** Set by the script-tag build, backbone-socket-sync.js. */
  interface Window {
    BackboneSocketSync: {
      connect(options?: ConnectOptions): SocketSyncSocket;
      live: typeof live;
      unlive: typeof unlive;
      socket: SocketSyncSocket;
      /** Resolves with this object once the wasm is loaded and installed. */
      ready: Promise<Window['BackboneSocketSync']>;
    };
  }
}
