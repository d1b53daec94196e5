//! The web console in a real headless Chromium (Debian's, over chromedriver) against a real
//! server on loopback: sign-in, the board, a ticket's timeline, the rule lifecycle split
//! between an operator and a second admin, reports, the audit log, and that
//! attacker-controlled ticket text stays text. Screenshots land in
//! `target/console-screenshots/`; a few are copied by hand into `docs/` for the README.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use switchboard_host::api::console::CONTENT_SECURITY_POLICY;
use switchboard_tests::browser::{Browser, screenshot_dir};
use switchboard_tests::receiver::{Receiver, fast_delivery};
use switchboard_tests::server::{Team, TestServer};
use switchboard_tests::{guest, guest_path};

/// A subject and description that would run script if the console parsed them as HTML.
const HOSTILE_SUBJECT: &str = r#"<img src=x onerror="document.body.dataset.pwned='subject'">"#;
const HOSTILE_DESCRIPTION: &str =
    r#"<script>document.body.dataset.pwned='description'</script><b>bold?</b>"#;

fn minutes_ago(m: i64) -> Timestamp {
    Timestamp::now()
        .checked_sub(SignedDuration::from_mins(m))
        .expect("in range")
}

/// A tenant with the co-managed split active (v1, uploaded by the operator, approved and
/// activated by the first admin) and three routed tickets: one breached, one fresh, one
/// whose subject and description are hostile markup.
/// Eight weeks of closed tickets for the reports: each week one network ticket (the MSP's)
/// answered and resolved in time, and one ERP ticket (internal IT's) answered later each
/// week, late from the fifth week back, and resolved after a day (late). Answers once every
/// escalation of them has fired or been cancelled, so none reaches a webhook made later.
async fn history(server: &TestServer, team: &Team) {
    let at = |t: Timestamp, mins: i64| {
        t.checked_add(SignedDuration::from_mins(mins))
            .expect("in range")
            .to_string()
    };
    let mut ids = Vec::new();
    for week in 1..=8_i64 {
        let created = minutes_ago(week * 7 * 24 * 60);
        for (id, category, respond, resolve) in [
            (format!("H{week}-NET"), "network", 30, 120),
            (format!("H{week}-ERP"), "erp", week * 60, 25 * 60),
        ] {
            let ticket = json!({"id": id, "subject": format!("{category} request, week -{week}"),
                                "category": category, "impact": 2, "urgency": 2,
                                "created_at": created.to_string()});
            server
                .post(&team.path("/tickets"), &team.intake.key, ticket)
                .await
                .expect(201);
            for (kind, mins) in [("responded", respond), ("resolved", resolve)] {
                server
                    .post(
                        &team.path(&format!("/tickets/{id}/events")),
                        &team.intake.key,
                        json!({"type": kind, "at": at(created, mins)}),
                    )
                    .await
                    .expect(200);
            }
            ids.push(id);
        }
    }
    for id in ids {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let view = server
                .get(&team.path(&format!("/tickets/{id}")), team.admin())
                .await;
            if view.expect(200)["escalations"]["pending"] == json!([]) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{id} keeps a pending escalation"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// Escalations and breaches go to `receiver` (endpoint `ops`), whose first two answers are
/// 503 with an hour's `Retry-After`, so those deliveries wait for a manual retry.
async fn desk(server: &TestServer, receiver: &Receiver) -> Team {
    let team = server.create_team("acme").await;
    server
        .put(
            &team.path("/config"),
            team.admin(),
            json!({"raci.network": "msp 2 network-ops", "raci.erp": "internal 1 erp-team"}),
        )
        .await
        .expect(200);
    let v1 = server
        .deploy(
            team.id(),
            &team.operator.key,
            team.admin(),
            guest("co-managed-split"),
        )
        .await;
    assert_eq!(v1, 1);
    history(server, &team).await;
    let secret = server
        .subscribe(&team, &receiver.url(), &["sla.breached", "sla.escalation"])
        .await;
    receiver.trust(secret);
    for _ in 0..2 {
        receiver
            .script
            .lock()
            .unwrap()
            .push_back((503, Some("3600")));
    }
    let tickets = [
        json!({"id": "NET-1", "subject": "Core switch down in the Leeds office", "category": "network",
               "impact": 1, "urgency": 1, "created_at": minutes_ago(40).to_string()}),
        json!({"id": "ERP-7", "subject": "Month-end report is slow", "category": "erp",
               "impact": 3, "urgency": 3}),
        json!({"id": "XSS-1", "subject": HOSTILE_SUBJECT, "description": HOSTILE_DESCRIPTION,
               "category": "network", "impact": 2, "urgency": 2}),
    ];
    for t in tickets {
        server
            .post(&team.path("/tickets"), &team.intake.key, t)
            .await
            .expect(201);
    }
    // ERP-7 waits on its requester for a while; XSS-1 goes to a vendor.
    for (id, event) in [
        (
            "ERP-7",
            json!({"type": "status", "status": "pending_customer"}),
        ),
        ("ERP-7", json!({"type": "status", "status": "open"})),
        (
            "XSS-1",
            json!({"type": "assigned", "party": "vendor", "queue": "acme-networks"}),
        ),
    ] {
        server
            .post(
                &team.path(&format!("/tickets/{id}/events")),
                &team.intake.key,
                event,
            )
            .await
            .expect(200);
    }
    team
}

async fn sign_in(browser: &Browser, base: &str, tenant: &str, key: &str) {
    browser.client.goto(base).await.expect("open the console");
    browser.fill("Tenant", tenant).await;
    browser.fill("API key", key).await;
    browser.click_button("Sign in").await;
    browser.wait_text("#nav", "SLA board").await;
}

async fn sign_out(browser: &Browser) {
    browser.click_button("Sign out").await;
    browser.wait_text("main h1", "Sign in").await;
    let kept = browser
        .js(
            "return [sessionStorage.length, sessionStorage.getItem('switchboard.key')];",
            vec![],
        )
        .await;
    assert_eq!(
        kept,
        json!([0, null]),
        "signing out forgets the key and the tenant"
    );
}

async fn go(browser: &Browser, hash: &str, heading: &str) {
    browser
        .js("location.hash = arguments[0];", vec![json!(hash)])
        .await;
    browser.wait_text("main h1", heading).await;
}

/// Nothing on the page reads as a missing value: no `null`, `undefined`, `NaN` or
/// `[object …]` where text should be.
async fn assert_clean(browser: &Browser) {
    let shown = browser
        .js("return document.querySelector('main').innerText;", vec![])
        .await;
    let shown = shown.as_str().expect("text");
    for bad in ["null", "undefined", "NaN", "[object"] {
        assert!(!shown.contains(bad), "the page shows {bad:?}:\n{shown}");
    }
    let unlabelled = browser
        .js(
            "return [...document.querySelectorAll('main input, main select, main textarea')] \
             .filter(e => e.labels.length === 0).map(e => e.name);",
            vec![],
        )
        .await;
    assert_eq!(unlabelled, json!([]), "every control has a label");
}

/// The hostile ticket text made no element and ran nothing.
async fn assert_inert(browser: &Browser) {
    let parsed = browser
        .js(
            "return [document.querySelectorAll('main img, main script, main b').length, \
             document.body.dataset.pwned || null];",
            vec![],
        )
        .await;
    assert_eq!(parsed, json!([0, null]), "ticket text was parsed as HTML");
}

/// Records every Content-Security-Policy violation of the page from now on.
async fn watch_policy(browser: &Browser) {
    browser
        .js(
            "window.violations = []; document.addEventListener('securitypolicyviolation', \
             e => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));",
            vec![],
        )
        .await;
}

async fn violations(browser: &Browser) -> Value {
    browser.js("return window.violations;", vec![]).await
}

/// Waits until the rule table's row of `version` shows `status`.
async fn wait_rule(browser: &Browser, version: &str, status: &str) {
    let what = format!("{version} {status}");
    browser
        .wait_texts("main table tbody tr", &what, |rows| {
            rows.iter()
                .any(|r| r.starts_with(version) && r.contains(status))
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_is_run_from_the_console_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), fast_delivery()).await;
    let mut receiver = Receiver::start().await;
    let team = desk(&server, &receiver).await;
    let base = format!("{}/", server.base());
    let shots = screenshot_dir();
    let browser = Browser::start().await;

    // A wrong key is refused in plain words, and nothing is kept.
    browser.client.goto(&base).await.unwrap();
    browser.fill("Tenant", "acme").await;
    browser.fill("API key", "sb_nope.nope").await;
    browser.click_button("Sign in").await;
    browser.wait_text("[role=alert]", "not accepted").await;
    assert_eq!(browser.js("return sessionStorage.length;", vec![]).await, 0);

    // The first admin signs in and sees the routed tickets, breached first.
    sign_in(&browser, &base, "acme", team.admin()).await;
    watch_policy(&browser).await;
    browser.wait_text("main tbody", "NET-1").await;
    let rows = browser.texts("main tbody tr").await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        rows[0].starts_with("breached") && rows[0].contains("NET-1"),
        "the breached ticket comes first: {rows:?}"
    );
    assert!(
        rows[0].contains("network-ops") && rows[0].contains("MSP"),
        "{rows:?}"
    );
    assert!(rows[0].contains("overdue"), "{rows:?}");
    let erp = rows
        .iter()
        .find(|r| r.contains("ERP-7"))
        .expect("ERP-7 on the board");
    assert!(
        erp.contains("erp-team") && erp.contains("Internal IT"),
        "{erp}"
    );
    assert!(erp.contains("due in"), "{erp}");

    // The hostile subject is shown as text and made no element.
    let subjects = browser.texts("main td.ticket .subject").await;
    assert!(
        subjects.iter().any(|s| s == HOSTILE_SUBJECT),
        "{subjects:?}"
    );
    assert_inert(&browser).await;

    // The key lives in this tab's sessionStorage, never in the URL.
    let url = browser.client.current_url().await.unwrap();
    assert!(!url.as_str().contains(team.admin()), "{url}");
    let stored = browser
        .js("return sessionStorage.getItem('switchboard.key');", vec![])
        .await;
    assert_eq!(stored, json!(team.admin()));
    assert_clean(&browser).await;
    browser.screenshot(&shots, "board").await;

    // Filters: only internal IT's tickets.
    browser
        .js(
            "const s = document.querySelector('select[name=party]'); s.value = 'internal'; \
             s.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await;
    browser
        .wait_texts("main tbody tr", "only internal IT's ticket", |rows| {
            rows.len() == 1 && rows[0].contains("ERP-7")
        })
        .await;

    // At a phone's width nothing runs off the side of the page.
    browser.client.set_window_size(390, 844).await.unwrap();
    go(&browser, "#/board", "SLA board").await;
    browser.wait_text("main tbody", "NET-1").await;
    let overflow = browser
        .js(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "the page is wider than a phone: {overflow}"
    );
    browser.screenshot(&shots, "board-phone").await;
    browser.client.set_window_size(1280, 800).await.unwrap();

    // The breached ticket's detail: decision, reason, rule, and its timeline.
    browser
        .js(
            "[...document.querySelectorAll('main td.ticket a')].find(a => a.textContent === 'NET-1').click();",
            vec![],
        )
        .await;
    browser.wait_text("main h1", "Core switch down").await;
    let timeline = browser.texts("ol.timeline li").await;
    assert!(timeline[0].contains("Created"), "{timeline:?}");
    assert!(
        timeline
            .iter()
            .any(|t| t.contains("first response target breached")),
        "{timeline:?}"
    );
    assert!(
        timeline.iter().any(|t| t.contains("pending")),
        "{timeline:?}"
    );
    let facts = browser.texts("main dl.facts").await.join(" ");
    assert!(
        facts.contains("network-ops") && facts.contains("v1"),
        "{facts}"
    );
    assert_clean(&browser).await;
    browser
        .js(
            "document.getElementById('clocks-title').scrollIntoView();",
            vec![],
        )
        .await;
    browser.screenshot(&shots, "ticket").await;

    // The hostile ticket's own page: subject and description are text.
    go(&browser, "#/tickets/XSS-1", HOSTILE_SUBJECT).await;
    let description = browser.texts("main .description .text").await;
    assert_eq!(description, vec![HOSTILE_DESCRIPTION.to_owned()]);
    assert_inert(&browser).await;
    browser
        .wait_text(
            "ol.timeline li",
            "Handed off from MSP / network-ops to Vendor / acme-networks",
        )
        .await;

    // A pause and its end, in the timeline of ERP-7.
    go(&browser, "#/tickets/ERP-7", "Month-end report").await;
    browser
        .wait_text("ol.timeline li", "Clocks paused: status pending_customer")
        .await;
    browser
        .wait_text("ol.timeline li", "Clocks resumed: status open")
        .await;
    assert_clean(&browser).await;
    assert_eq!(
        violations(&browser).await,
        json!([]),
        "the console broke its own policy"
    );
    sign_out(&browser).await;

    // The operator signs in with the keyboard alone, uploads a version, dry-runs it, and is
    // offered no approval.
    browser.client.goto(&base).await.unwrap();
    browser.wait_text("main h1", "Sign in").await;
    let focused = browser.client.active_element().await.unwrap();
    assert_eq!(
        focused.attr("name").await.unwrap().as_deref(),
        Some("tenant")
    );
    focused
        .send_keys(&format!("acme\u{E004}{}\u{E007}", team.operator.key))
        .await
        .unwrap();
    browser.wait_text("#nav", "SLA board").await;
    go(&browser, "#/rules", "Rules").await;
    let upload = browser
        .client
        .find(fantoccini::Locator::Css("input[type=file]"))
        .await
        .expect("the upload control");
    let module = guest_path("vip-and-security");
    upload.send_keys(module.to_str().unwrap()).await.unwrap();
    browser.click_button("Upload").await;
    wait_rule(&browser, "v2", "uploaded").await;
    let buttons = browser.texts("main button").await;
    assert!(
        !buttons
            .iter()
            .any(|b| b.starts_with("Approve") || b.starts_with("Activate")),
        "an operator is offered {buttons:?}"
    );
    browser.click_button("Run").await;
    let dry = browser.wait_text("main .result", "Fuel").await;
    assert!(dry.contains("Ticket DRY-1") && dry.contains("→"), "{dry}");
    let note = browser.texts("main .notice.note").await.join(" ");
    assert!(
        note.contains("needs an admin") && note.contains("Four-eyes approval is on"),
        "{note}"
    );
    sign_out(&browser).await;

    // The second admin approves and activates it.
    sign_in(&browser, &base, "acme", &team.admin2.key).await;
    go(&browser, "#/rules", "Rules").await;
    watch_policy(&browser).await;

    // Before approving, what would v2 change? A replay over the 19 stored tickets.
    browser.click_button("Replay").await;
    browser.wait_text("main .replay", "Evaluated").await;
    let count = |name: &'static str| {
        let browser = &browser;
        async move {
            let text = browser
                .texts(&format!("main .replay dd[data-count={name}]"))
                .await;
            text[0].parse::<u64>().unwrap()
        }
    };
    let evaluated = count("evaluated").await;
    assert_eq!(evaluated, 19, "every stored ticket");
    assert_eq!(count("unchanged").await + count("changed").await, evaluated);
    assert!(
        count("changed").await > 0,
        "the VIP rule routes differently"
    );
    browser
        .js(
            "document.querySelector('main .replay').scrollIntoView();",
            vec![],
        )
        .await;
    browser.screenshot(&shots, "replay").await;

    browser.click_button("Approve v2").await;
    wait_rule(&browser, "v2", "approved").await;
    browser.click_button("Activate v2").await;
    wait_rule(&browser, "v2", "active").await;
    let rules = server.get(&team.path("/rules"), team.admin()).await;
    let rules = rules.expect(200);
    assert_eq!(rules["active"], 2);
    let v2 = &rules["rules"][1];
    assert_eq!(v2["uploaded_by"], team.operator.id.as_str());
    assert_eq!(v2["approved_by"], team.admin2.id.as_str());
    assert_clean(&browser).await;
    let uploaded = browser.texts("main tbody tr").await;
    assert!(
        uploaded[0].contains("msp engineer") && uploaded[0].contains("you"),
        "names: {uploaded:?}"
    );
    browser.screenshot(&shots, "rules").await;

    // Reports: the charts are drawn, here, as SVG.
    go(&browser, "#/reports", "Reports").await;
    browser
        .wait_text("main figcaption", "Compliance per party")
        .await;
    let drawn = browser
        .js(
            "return [document.querySelectorAll('svg.chart').length, \
             document.querySelectorAll('svg.chart circle').length, \
             document.querySelectorAll('svg.chart rect').length];",
            vec![],
        )
        .await;
    assert_eq!(drawn[0], 2, "{drawn}");
    assert!(
        drawn[1].as_i64().unwrap() >= 16,
        "a compliance point per party for each of the eight weeks: {drawn}"
    );
    assert!(
        drawn[2].as_i64().unwrap() >= 2,
        "met and breached bars: {drawn}"
    );
    assert_clean(&browser).await;
    browser.screenshot(&shots, "reports").await;
    browser.click_button("Download CSV").await;
    browser
        .wait_text("[role=status]", "The CSV was downloaded.")
        .await;

    // The audit log, filtered to approvals: the second admin's approval of v2.
    go(&browser, "#/audit", "Audit log").await;
    browser.wait_text("main tbody", "rule.activate").await;
    browser.fill("Action starts with", "rule.approve").await;
    browser.click_button("Apply").await;
    let rows = browser
        .wait_texts("main tbody tr", "only approvals", |rows| {
            !rows.is_empty() && rows.iter().all(|r| r.contains("rule.approve"))
        })
        .await;
    assert_eq!(rows.len(), 2, "v1's and v2's approvals: {rows:?}");
    assert!(
        rows[0].contains(&team.admin2.id) && rows[0].contains("rules/2"),
        "newest first: {rows:?}"
    );
    assert_clean(&browser).await;
    browser.screenshot(&shots, "audit").await;

    // Webhooks: the refused deliveries wait; "Retry now" sends one at once.
    go(&browser, "#/webhooks", "Webhooks").await;
    browser.wait_text("main tbody", "HTTP 503").await;
    let waiting = browser.texts("main tbody tr").await;
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    assert!(waiting.iter().all(|r| r.contains("pending")), "{waiting:?}");
    assert_clean(&browser).await;
    browser.screenshot(&shots, "webhooks").await;
    let msg = browser
        .texts("main tbody tr:first-child td:first-child")
        .await;
    for _ in 0..2 {
        assert!(
            receiver.next().await.verified > 0,
            "the refused first attempts were signed"
        );
    }
    browser.click_button("Retry now").await;
    browser
        .wait_text("[role=status]", "being retried now")
        .await;
    let retried = receiver
        .within(std::time::Duration::from_secs(20))
        .await
        .expect("the retried delivery arrives");
    assert_eq!(retried.id, msg[0], "the row's delivery was the one retried");
    assert!(retried.verified > 0, "signed with the endpoint's secret");

    // Schedules: a weekday digest, made from the form.
    go(&browser, "#/schedules", "Schedules").await;
    browser.fill("Schedule id", "weekday-digest").await;
    browser.fill("Time zone", "Europe/London").await;
    browser.click_button("Save").await;
    let row = browser.wait_text("main tbody tr", "weekday-digest").await;
    assert!(
        row.contains("Europe/London") && row.contains("sla.digest"),
        "{row}"
    );
    assert_clean(&browser).await;
    let schedules = server.get(&team.path("/schedules"), team.admin()).await;
    assert_eq!(
        schedules.expect(200)["schedules"][0]["id"],
        "weekday-digest"
    );
    assert_eq!(violations(&browser).await, json!([]));
    sign_out(&browser).await;

    // A viewer reads every page it may, and is offered nothing that changes anything.
    sign_in(&browser, &base, "acme", &team.viewer.key).await;
    let nav = browser.texts("#nav a").await;
    assert_eq!(
        nav,
        ["SLA board", "Rules", "Webhooks", "Schedules", "Reports"],
        "no audit log for a viewer"
    );
    for (hash, heading, row) in [
        ("#/rules", "Rules", "v2"),
        ("#/webhooks", "Webhooks", "sla.breached"),
        ("#/schedules", "Schedules", "weekday-digest"),
    ] {
        go(&browser, hash, heading).await;
        browser.wait_text("main tbody", row).await;
        let controls = browser
            .js(
                "return [...document.querySelectorAll('main button, main input, main textarea, main form')] \
                 .map(e => e.tagName + ':' + (e.textContent || e.name));",
                vec![],
            )
            .await;
        assert_eq!(controls, json!([]), "{hash} offers a viewer {controls}");
        assert_clean(&browser).await;
    }
    sign_out(&browser).await;

    // Four-eyes, as the page shows it: the admin who uploaded v3 may not approve it.
    let v3 = server
        .upload(team.id(), team.admin(), guest("after-hours"))
        .await;
    assert_eq!(v3.expect(201)["status"], "uploaded");
    sign_in(&browser, &base, "acme", team.admin()).await;
    go(&browser, "#/rules", "Rules").await;
    browser.wait_text("main tbody", "v3").await;
    let enabled = browser
        .js(
            "const b = [...document.querySelectorAll('main button')].find(b => b.textContent === 'Approve v3'); \
             return b ? !b.disabled : null;",
            vec![],
        )
        .await;
    assert_eq!(
        enabled,
        json!(false),
        "the uploader's approve button is disabled"
    );
    browser
        .wait_text("main td.actions", "another admin approves")
        .await;

    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_under_a_strict_policy() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", server.base())).send();

    let page = get("/").await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["content-security-policy"], CONTENT_SECURITY_POLICY);
    assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self';"));
    assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/console/app.js">"#));

    let script = get("/console/app.js").await.unwrap();
    assert_eq!(script.status(), 200);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(script.headers()["x-content-type-options"], "nosniff");

    let missing = get("/console/nope.js").await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    // The API's own answers carry the same headers.
    let health = get("/healthz").await.unwrap();
    assert_eq!(health.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        health.headers()["content-security-policy"],
        CONTENT_SECURITY_POLICY
    );
    server.stop().await;
}
