//! Static files: the `--www` folder at `/`, and Backbone's dependencies at `/vendor/…`, looked
//! up (once, at start-up) first in `<www>/vendor/` and then in the repository's `node_modules`.

use std::path::{Path, PathBuf};

use axum::Router;
use tower_http::services::{ServeDir, ServeFile};

/// Where `/vendor/<name>` is found inside `node_modules` when `<www>/vendor/<name>` is absent.
const VENDOR: &[(&str, &[&str])] = &[
    ("backbone.js", &["backbone/backbone.js"]),
    (
        "underscore.js",
        &["underscore/underscore-umd.js", "underscore/underscore.js"],
    ),
    ("jquery.js", &["jquery/dist/jquery.js"]),
];

/// Serves `www` at `/` (index.html for directories) plus the vendor scripts. Each vendor
/// script's file is chosen once, here (`<www>/vendor/<name>` first, then `node_modules`), and
/// served by `ServeFile` (streamed, with `Last-Modified`); other `/vendor/…` paths are
/// `<www>/vendor/` files like any other.
pub fn router(www: &Path) -> Router {
    let mut node_modules = Vec::new();
    if let Some(repo) = www.parent() {
        node_modules.push(repo.join("node_modules"));
    }
    if let Ok(cwd) = std::env::current_dir() {
        node_modules.push(cwd.join("node_modules"));
    }
    let mut router = Router::new();
    for (name, paths) in VENDOR {
        let installed = node_modules
            .iter()
            .flat_map(|dir| paths.iter().map(move |path| dir.join(path)));
        let found = std::iter::once(www.join("vendor").join(name))
            .chain(installed)
            .find(|path| path.is_file());
        if let Some(path) = found {
            router = router.route_service(&format!("/vendor/{name}"), ServeFile::new(path));
        }
    }
    router.fallback_service(ServeDir::new(www))
}

/// The default `--www`: `./www` when it holds an index.html, else this repository's `www/`.
pub fn default_www() -> PathBuf {
    let local = PathBuf::from("www");
    if local.join("index.html").is_file() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("www")
}
