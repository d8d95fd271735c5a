// Where the benchmark finds this project's client: the one place to change when the build
// renames or moves its files. Imported by the benchmark page (bench.mjs, clients.mjs) and by
// Node (bench/setup.mjs writes the first-fetch pages from it).
//
//   esm     the ES module entry (`install`, `connect`, `sync`, `socket`, `live`), imported by
//           the benchmark page
//   script  what a production script-tag page loads after Backbone (it exposes
//           `BackboneSocketSync.connect(...)` and installs `Backbone.sync`), used by the
//           first-fetch page
export const OURS = {
  esm: '/backbone-socket-sync.mjs',
  script: '/pkg/backbone-socket-sync.min.js',
};
