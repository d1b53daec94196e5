//! The web console: plain HTML, CSS and ES modules compiled into the binary, so `serve` needs
//! nothing beside itself and there is no front-end build step to reproduce. The console is
//! only a client of this same API — every check stays on the API side — and it runs under a
//! Content-Security-Policy that allows nothing but this origin's own scripts, styles and
//! fetches (see [`SECURITY_HEADERS`], set on every answer of the server).

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{ApiError, ApiPath};

/// One embedded file of the console.
#[derive(Debug)]
pub struct Asset {
    /// Its name under `/console/`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

macro_rules! assets {
    ($($name:literal => $kind:expr),* $(,)?) => {
        &[$(Asset {
            name: $name,
            content_type: $kind,
            body: include_bytes!(concat!("../../console/", $name)),
        }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file under `host/console/` (a test checks that none is missing).
pub const ASSETS: &[Asset] = assets![
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "icon.svg" => "image/svg+xml",
    "app.js" => JS,
    "api.js" => JS,
    "dom.js" => JS,
    "format.js" => JS,
    "board.js" => JS,
    "ticket.js" => JS,
    "rules.js" => JS,
    "audit.js" => JS,
    "webhooks.js" => JS,
    "schedules.js" => JS,
    "reports.js" => JS,
    "chart.js" => JS,
];

/// The policy: this origin's scripts, styles, images and fetches only; no inline script or
/// style, no plugins, no framing, no form posts, no `<base>` rewriting.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Headers set on every answer of the server, the API's included (an API answer opened in a
/// browser tab is then as inert as the console's own pages).
pub const SECURITY_HEADERS: [(HeaderName, &str); 5] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
];

fn serve(asset: &Asset) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        asset.body,
    )
        .into_response()
}

fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// `GET /`: the console's page.
#[utoipa::path(
    get, path = "/", tag = "console",
    summary = "The web console (sign in with a key).",
    extensions(("x-min-role" = json!("none"))),
    responses((status = 200, description = "The console's page.", content_type = "text/html"))
)]
pub(crate) async fn index() -> Response {
    serve(asset("index.html").expect("index.html is embedded"))
}

/// `/console/{asset}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct AssetPath {
    /// A file of the console, e.g. `app.js`.
    asset: String,
}

/// `GET /console/{asset}`: a script, style sheet or icon of the console.
#[utoipa::path(
    get, path = "/console/{asset}", tag = "console",
    summary = "A script, style sheet or icon of the web console.",
    extensions(("x-min-role" = json!("none"))),
    params(AssetPath),
    responses(
        (status = 200, description = "The file.", content(
            ("text/javascript"), ("text/css"), ("image/svg+xml"), ("text/html")
        )),
        (status = 404, description = "No such file (`not_found`).", body = super::ErrorBody),
    )
)]
pub(crate) async fn file(ApiPath(path): ApiPath<AssetPath>) -> Result<Response, ApiError> {
    asset(&path.asset)
        .map(serve)
        .ok_or_else(|| ApiError::not_found("no such console file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_console_file_is_embedded_and_every_embedded_file_exists() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.name.to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn no_console_file_holds_inline_script_or_a_third_party_origin() {
        for a in ASSETS {
            // The SVG namespace is an identifier, not an origin anything is fetched from.
            let text = std::str::from_utf8(a.body)
                .unwrap()
                .replace("http://www.w3.org/2000/svg", "");
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "http://",
                "https://",
            ] {
                assert!(!text.contains(banned), "{} holds {banned:?}", a.name);
            }
            if a.name == "index.html" {
                assert!(!text.contains("<script>"), "inline script in index.html");
                let handler = text.match_indices(" on").any(|(i, _)| {
                    let rest = &text[i + 3..];
                    let name = rest.len()
                        - rest
                            .trim_start_matches(|c: char| c.is_ascii_lowercase())
                            .len();
                    name > 0 && rest[name..].starts_with('=')
                });
                assert!(!handler, "an inline event handler in index.html");
                assert!(!text.contains("style="), "an inline style in index.html");
            }
        }
    }
}
