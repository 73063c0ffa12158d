//! `GET /ui`: the dashboard, one plain HTML page with inline script, embedded
//! in the binary (no build step). It holds no data: it reads the API the
//! CLI reads (`/topics`, `/processors`, `/history`) every two seconds and
//! keeps the last five minutes of each partition's lag in the page for its
//! chart. So the page itself is served without the token check, and its
//! requests carry the token: taken from the URL fragment (`/ui#token=…`,
//! which browsers never send to the server, so it stays out of access logs
//! and proxies; the page then removes it from the address bar and keeps it
//! in the tab's session storage) or asked for when the API answers 401.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("ui.html");

pub(super) async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // Inline script and style only; the API on this origin.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
}
