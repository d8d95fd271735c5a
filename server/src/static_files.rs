//! Static files: the `--www` folder at `/`, and Backbone's dependencies at `/vendor/…`, looked
//! up first in `<www>/vendor/` and then in the repository's `node_modules`.

use std::path::{Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::services::ServeDir;

/// Where `/vendor/<name>` is found inside `node_modules` when `<www>/vendor/<name>` is absent.
const VENDOR: &[(&str, &[&str])] = &[
    ("backbone.js", &["backbone/backbone.js"]),
    (
        "underscore.js",
        &["underscore/underscore-umd.js", "underscore/underscore.js"],
    ),
    ("jquery.js", &["jquery/dist/jquery.js"]),
];

#[derive(Clone)]
struct Dirs {
    www: PathBuf,
    node_modules: Vec<PathBuf>,
}

/// Serves `www` at `/` (index.html for directories) plus the vendor scripts.
pub fn router(www: &Path) -> Router {
    let mut node_modules = Vec::new();
    if let Some(repo) = www.parent() {
        node_modules.push(repo.join("node_modules"));
    }
    if let Ok(cwd) = std::env::current_dir() {
        node_modules.push(cwd.join("node_modules"));
    }
    let dirs = Dirs {
        www: www.to_owned(),
        node_modules,
    };
    Router::new()
        .route("/vendor/{name}", get(vendor))
        .with_state(dirs)
        .fallback_service(ServeDir::new(www))
}

/// The default `--www`: `./www` when it holds an index.html, else this repository's `www/`.
pub fn default_www() -> PathBuf {
    let local = PathBuf::from("www");
    if local.join("index.html").is_file() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("www")
}

async fn vendor(State(dirs): State<Dirs>, UrlPath(name): UrlPath<String>) -> Response {
    let mut candidates = Vec::new();
    let safe = !name.contains('/') && !name.contains('\\') && !name.starts_with('.');
    if safe {
        candidates.push(dirs.www.join("vendor").join(&name));
    }
    if let Some((_, paths)) = VENDOR.iter().find(|(n, _)| *n == name) {
        for dir in &dirs.node_modules {
            candidates.extend(paths.iter().map(|p| dir.join(p)));
        }
    }
    for path in candidates {
        if let Ok(bytes) = tokio::fs::read(&path).await {
            let mime = if name.ends_with(".js") {
                "text/javascript; charset=utf-8"
            } else {
                "application/octet-stream"
            };
            return ([(header::CONTENT_TYPE, mime)], bytes).into_response();
        }
    }
    (StatusCode::NOT_FOUND, "not found").into_response()
}
