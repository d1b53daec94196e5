//! Report routes: thin over [`crate::reports`], which keeps the aggregates and reads them;
//! here only the query is parsed and the rows are written as JSON or CSV.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{ApiQuery, Authorized, ok};
use super::params::TenantPath;
use super::{ApiError, AppState};
use crate::reports::{self, GroupKey, Period, Report};

/// `GET …/reports/sla` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReportQuery {
    /// The first day, `YYYY-MM-DD` (default: 29 days before `to`).
    #[param(format = Date)]
    from: Option<String>,
    /// The last day, included (default: today in `tz`). At most 400 days from `from`.
    #[param(format = Date)]
    to: Option<String>,
    /// Keys to group rows by, separated by commas: `party`, `queue`, `priority`, `metric`,
    /// `calendar` (default `party`; empty for one row of totals).
    group_by: Option<String>,
    /// The time zone the days are in, an IANA name (default `UTC`).
    tz: Option<String>,
}

/// `GET …/reports/sla`: the service-review report.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/reports/sla", tag = "reports",
    summary = "SLA figures for the tickets created from `from` to `to`, grouped by `group_by`: counts, compliance, response and resolution percentiles, escalations, handoffs. `Accept: text/csv` for CSV.",
    extensions(("x-min-role" = json!("viewer"))),
    params(TenantPath, ReportQuery),
    responses(
        (status = 200, description = "The report; with `Accept: text/csv`, the same rows as CSV with a header line.",
            content((Report = "application/json"), (String = "text/csv"))),
        (status = 422, description = "A bad or reversed period, a period over 400 days, a bad `tz` or an unknown `group_by` key (`invalid_query`).", body = super::ErrorBody),
    )
)]
pub(crate) async fn sla(
    State(service): State<AppState>,
    access: Authorized,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    let group_by = GroupKey::parse_list(query.group_by.as_deref())?;
    let period = Period::parse(
        query.from.as_deref(),
        query.to.as_deref(),
        query.tz.as_deref(),
        Timestamp::now(),
    )?;
    let (store, tenant) = (service.store.clone(), access.id().to_owned());
    let (report, tenant) = tokio::task::spawn_blocking(move || {
        reports::report(&store, &tenant, &period, &group_by).map(|r| (r, tenant))
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    if !wants_csv(&headers) {
        return Ok(ok(report));
    }
    let name = format!(
        "attachment; filename=\"sla-{tenant}-{}-{}.csv\"",
        report.period.from, report.period.to
    );
    let mut response = csv(&report).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// Whether the caller asked for CSV (`text/csv` in `Accept`, before any JSON it also takes).
fn wants_csv(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let kinds: Vec<String> = accept
        .split(',')
        .map(|k| {
            k.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .collect();
    let at = |t: &str| kinds.iter().position(|k| k == t);
    match (at("text/csv"), at("application/json")) {
        (Some(c), Some(j)) => c < j,
        (Some(_), None) => true,
        _ => false,
    }
}

/// The figures' CSV columns, after the group keys.
const FIGURES: [&str; 12] = [
    "tickets",
    "resolved",
    "met",
    "breached",
    "running",
    "compliance_percent",
    "first_response_p50_secs",
    "first_response_p90_secs",
    "resolution_p50_secs",
    "resolution_p90_secs",
    "escalations",
    "handoffs",
];

/// `report`'s rows as CSV (RFC 4180): a header line, then a line per row with the group keys
/// asked for and [`FIGURES`], each as the JSON answer has it (a `null` figure an empty cell).
/// A text cell a spreadsheet would read as a formula (it starts with `=`, `+`, `-`, `@`, tab
/// or carriage return) is prefixed with `'`: queue names come from rules.
fn csv(report: &Report) -> String {
    let columns: Vec<&str> = report
        .group_by
        .iter()
        .map(|k| k.as_str())
        .chain(FIGURES)
        .collect();
    let mut out = columns.join(",");
    out.push_str("\r\n");
    for row in &report.rows {
        let row = serde_json::to_value(row).unwrap_or_default();
        let cells: Vec<String> = columns.iter().map(|c| value_cell(&row[*c])).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// A JSON value as a cell: text through [`cell`], numbers as Rust writes them (`50`, `66.67`),
/// nothing for `null` or an absent key.
fn value_cell(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => cell(s),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => f.to_string(),
            _ => n.to_string(),
        },
        serde_json::Value::Null => String::new(),
        other => cell(&other.to_string()),
    }
}

/// One text cell: quoted when it holds a comma, quote or line break; defused when a
/// spreadsheet would take it for a formula.
fn cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("service-desk"), "service-desk");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(cell("-1,2"), "\"'-1,2\"");
    }

    #[test]
    fn csv_is_asked_for_by_accept() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static(v));
            wants_csv(&h)
        };
        assert!(with("text/csv"));
        assert!(with("text/csv;q=0.9, application/json;q=0.8"));
        assert!(!with("application/json, text/csv"));
        assert!(!with("*/*"));
        assert!(!wants_csv(&HeaderMap::new()));
    }
}
