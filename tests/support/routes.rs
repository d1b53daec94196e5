//! The route table as the server serves it (`x-min-role` on each operation of
//! `/openapi.json`), for tests that check the server against its own declared access rules.

use reqwest::Method;

use crate::server::{Api, Body};

/// The served route table: `(method, path template, x-min-role)` of every operation.
pub async fn route_table(api: &Api) -> Vec<(Method, String, String)> {
    let reply = api
        .call(Method::GET, "/openapi.json", None, Body::None)
        .await;
    let doc = reply.expect(200).clone();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let role = op["x-min-role"].as_str().unwrap_or_else(|| {
                panic!("{method} {path} has no x-min-role in the served document")
            });
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            out.push((method, path.clone(), role.to_owned()));
        }
    }
    out
}

/// The template of `table` that `method path` falls under.
pub fn template_of<'a>(
    table: &'a [(Method, String, String)],
    method: &Method,
    path: &str,
) -> &'a (Method, String, String) {
    let path = path.split('?').next().unwrap();
    let segments: Vec<&str> = path.split('/').collect();
    let fits = |template: &str| {
        let t: Vec<&str> = template.split('/').collect();
        t.len() == segments.len()
            && t.iter()
                .zip(&segments)
                .all(|(t, s)| t.starts_with('{') || t == s)
    };
    // A literal segment beats a parameter (`/rules/rollback` over `/rules/{version}`).
    table
        .iter()
        .filter(|(m, t, _)| m == method && fits(t))
        .min_by_key(|(_, t, _)| t.matches('{').count())
        .unwrap_or_else(|| panic!("{method} {path} is in no route of the table"))
}
