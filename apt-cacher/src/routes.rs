//! Which service answers a request: an axum [`Router`] with the cacher's
//! own pages as routes (`/~/metrics`, `/~/status`, `/~/status.json`, any
//! other `/~/...` is a 404), the proxy ([`App::handle`]: mappings, proxy
//! requests, `CONNECT`) as the fallback service, and the access-log and
//! metrics layer (`access_log.rs`) around all of them. The pages are the
//! cacher's only for a request to the cacher itself (origin-form, or
//! absolute-form to one of its ports): a guard on those routes hands a
//! proxy request for another host's `/~/...` to the proxy, and checks the
//! method (GET, HEAD) and `status_allow` before a page is rendered.
//! `server.rs` gives each request the client's address as
//! `ConnectInfo`.

use crate::access_log::{self, client};
use crate::handler::App;
use crate::pages;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use hyper::{Method, StatusCode};
use std::sync::Arc;

/// The router of one cacher.
pub fn router(app: Arc<App>) -> Router {
    let metrics = app.metrics.clone();
    Router::new()
        .route("/~/metrics", any(metrics_page))
        .route("/~/status", any(status_page))
        .route("/~/status.json", any(status_json))
        .route("/~/", any(unknown_page))
        .route("/~/{*page}", any(unknown_page))
        .route_layer(from_fn_with_state(app.clone(), own_pages))
        .fallback(proxy)
        .with_state(app)
        .layer(from_fn_with_state(metrics, access_log::layer))
}

/// The proxy: everything that is not one of the cacher's own pages.
async fn proxy(State(app): State<Arc<App>>, req: Request) -> Response {
    let peer = client(&req);
    app.handle(req, peer).await.map(Body::new)
}

/// The guard of the page routes: another host's `/~/...` goes to the
/// proxy; then only GET and HEAD, from clients `status_allow` admits.
async fn own_pages(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if pages::reserved_page(req.uri(), &app.self_ports).is_none() {
        return proxy(State(app), req).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return pages::refused(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are supported".to_string(),
        )
        .map(Body::new);
    }
    let ip = client(&req).ip();
    if !app.status_allowed(ip) {
        return pages::refused(
            StatusCode::FORBIDDEN,
            format!("{ip} may not read the status pages (status_allow)"),
        )
        .map(Body::new);
    }
    next.run(req).await
}

async fn metrics_page(State(app): State<Arc<App>>, method: Method) -> Response {
    pages::metrics(&app, &method).map(Body::new)
}

async fn status_page(State(app): State<Arc<App>>, method: Method) -> Response {
    pages::status_html(&app, &method).map(Body::new)
}

async fn status_json(State(app): State<Arc<App>>, method: Method) -> Response {
    pages::status_json(&app, &method).map(Body::new)
}

async fn unknown_page() -> Response {
    pages::not_found().map(Body::new)
}
