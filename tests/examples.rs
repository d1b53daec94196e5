//! The example rules, built to wasm and evaluated by the real runtime: the same routing the
//! examples' native unit tests check through the SDK, now across the sandbox boundary.

use std::sync::Arc;

use serde_json::json;
use switchboard_host::{EvalContext, Limits, Runtime, RuntimeConfig};
use switchboard_rules::{
    Calendar, CalendarSet, CalendarSpec, EscalationTrigger, Metric, Party, Priority,
};
use switchboard_tests::{created, guest};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).expect("runtime")
}

fn ctx_with(config: &[(&str, &str)], calendars: CalendarSet) -> EvalContext {
    EvalContext {
        calendars: Arc::new(calendars),
        ..switchboard_tests::context(config)
    }
}

const BERLIN_OFFICE: &str = r#"{"timezone": "Europe/Berlin",
    "hours": {"mon": [["08:00", "18:00"]], "tue": [["08:00", "18:00"]], "wed": [["08:00", "18:00"]],
              "thu": [["08:00", "18:00"]], "fri": [["08:00", "16:00"]]},
    "holidays": ["2026-12-25"]}"#;

fn berlin() -> CalendarSet {
    let spec: CalendarSpec = serde_json::from_str(BERLIN_OFFICE).unwrap();
    let mut set = CalendarSet::default();
    set.insert("business-hours", Calendar::new(&spec).unwrap());
    set
}

#[test]
fn vip_and_security_routes_security_over_vip() {
    let rt = runtime();
    let rule = rt
        .load(&guest("vip-and-security"), &Limits::default())
        .unwrap();
    let ctx = ctx_with(&[], CalendarSet::default());

    let security = created(
        json!({"id": "S-1", "category": "security", "requester": {"email": "ceo@x", "vip": true}}),
    );
    let eval = rt.evaluate(&rule, &ctx, &security);
    let d = eval.outcome.unwrap();
    assert_eq!(
        (d.queue.as_str(), d.party, d.tier, d.priority),
        ("soc", Party::Msp, 2, Priority::P1)
    );
    let fr = d
        .sla
        .iter()
        .find(|t| t.metric == Metric::FirstResponse)
        .unwrap();
    assert_eq!((fr.minutes, fr.calendar.as_str()), (15, "24x7"));
    let triggers: Vec<_> = d.escalations.iter().map(|e| e.trigger).collect();
    assert_eq!(
        triggers,
        [
            EscalationTrigger::PercentElapsed(50),
            EscalationTrigger::PercentElapsed(90),
            EscalationTrigger::MinutesAfterDue(0)
        ]
    );
    assert!(eval.fuel_used > 0);

    let vip = created(
        json!({"id": "V-1", "impact": 2, "urgency": 2, "requester": {"email": "ceo@x", "vip": true}}),
    );
    let eval = rt.evaluate(&rule, &ctx, &vip);
    let d = eval.outcome.unwrap();
    assert_eq!(
        (d.queue.as_str(), d.party, d.tier, d.priority),
        ("vip-desk", Party::Internal, 2, Priority::P2)
    );
    assert_eq!(eval.log.len(), 1);
    assert_eq!(eval.log[0].message, "VIP requester ceo@x");
}

#[test]
fn co_managed_split_follows_the_raci_map_in_config() {
    let rt = runtime();
    let rule = rt
        .load(&guest("co-managed-split"), &Limits::default())
        .unwrap();
    let ctx = ctx_with(
        &[
            ("raci.network", "msp 2 network-ops"),
            ("raci.backup", "msp 2 backup-ops"),
            ("raci.patching", "msp 2 patching"),
            ("raci.hr-systems", "internal 2 hr-it"),
            ("raci.erp", "internal 2 erp-team"),
            ("calendar", "business-hours"),
        ],
        berlin(),
    );
    for (category, queue, party) in [
        ("network", "network-ops", Party::Msp),
        ("backup", "backup-ops", Party::Msp),
        ("patching", "patching", Party::Msp),
        ("hr-systems", "hr-it", Party::Internal),
        ("erp", "erp-team", Party::Internal),
        ("printing", "service-desk", Party::Msp),
    ] {
        let event = created(json!({"id": "T", "category": category, "impact": 2, "urgency": 2}));
        let d = rt.evaluate(&rule, &ctx, &event).outcome.unwrap();
        assert_eq!((d.queue.as_str(), d.party), (queue, party), "{category}");
        let res = d
            .sla
            .iter()
            .find(|t| t.metric == Metric::Resolution)
            .unwrap();
        assert_eq!(
            (res.minutes, res.calendar.as_str()),
            (1440, "business-hours")
        );
    }
    // A config naming a calendar the tenant does not have makes the decision invalid.
    let ctx = ctx_with(&[("calendar", "missing")], CalendarSet::default());
    let event = created(json!({"id": "T", "category": "network", "impact": 3, "urgency": 3}));
    let err = rt.evaluate(&rule, &ctx, &event).outcome.unwrap_err();
    assert_eq!(err.failure.kind(), "invalid_decision");
    assert!(err.to_string().contains("\"missing\""), "{err}");
}

#[test]
fn after_hours_uses_the_business_calendar() {
    let rt = runtime();
    let rule = rt.load(&guest("after-hours"), &Limits::default()).unwrap();
    let ctx = ctx_with(&[], berlin());
    // Monday 10:00 Berlin: inside hours.
    let inside = created(json!({"id": "A-1", "created_at": "2026-01-05T09:00:00Z"}));
    let d = rt.evaluate(&rule, &ctx, &inside).outcome.unwrap();
    assert_eq!(
        (d.queue.as_str(), d.party),
        ("internal-desk", Party::Internal)
    );
    // Monday 21:00 Berlin, Saturday, and Christmas Day: after hours.
    for at in [
        "2026-01-05T20:00:00Z",
        "2026-01-10T10:00:00Z",
        "2026-12-25T10:00:00Z",
    ] {
        let event = created(json!({"id": "A-2", "created_at": at}));
        let eval = rt.evaluate(&rule, &ctx, &event);
        let d = eval.outcome.unwrap();
        assert_eq!(
            (d.queue.as_str(), d.party),
            ("after-hours", Party::Msp),
            "{at}"
        );
        assert_eq!(
            eval.log.len(),
            1,
            "{at}: the rule logs when internal IT is back"
        );
    }
    // Without the calendar, the rule reports a configuration error.
    let bare = ctx_with(&[], CalendarSet::default());
    let err = rt.evaluate(&rule, &bare, &inside).outcome.unwrap_err();
    assert_eq!(err.failure.kind(), "rule_error");
    assert!(err.to_string().contains("missing-calendar"), "{err}");
}
