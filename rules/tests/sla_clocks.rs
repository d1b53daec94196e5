//! SLA clock behaviour: start, pause and resume by status, met, breach, retroactive target
//! changes, reopen, next response, escalation instants, and a property test tying due,
//! elapsed and escalation instants together under random pauses.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use switchboard_rules::{
    Calendar, CalendarError, CalendarSet, CalendarSpec, ClockState, Escalation, EscalationTrigger,
    Metric, SlaClocks, SlaError, SlaTarget,
};

const NY: &str = "America/New_York";

fn calendars() -> CalendarSet {
    let hours = ["mon", "tue", "wed", "thu", "fri"]
        .iter()
        .map(|d| {
            (
                (*d).to_owned(),
                vec![["09:00".to_owned(), "17:00".to_owned()]],
            )
        })
        .collect();
    let spec = CalendarSpec {
        timezone: NY.into(),
        hours,
        holidays: vec!["2026-01-19".into()],
    };
    let mut set = CalendarSet::default();
    set.insert("office", Calendar::new(&spec).unwrap());
    set
}

fn at(datetime: &str) -> Timestamp {
    let dt: jiff::civil::DateTime = datetime.parse().unwrap();
    TimeZone::get(NY).unwrap().to_timestamp(dt).unwrap()
}

fn target(metric: Metric, minutes: u32) -> SlaTarget {
    SlaTarget {
        metric,
        minutes,
        calendar: "office".into(),
    }
}

fn step(metric: Metric, trigger: EscalationTrigger) -> Escalation {
    Escalation {
        metric,
        trigger,
        label: "x".into(),
        notify: "oncall".into(),
    }
}

fn paused() -> Vec<String> {
    vec!["pending_customer".into(), "pending_vendor".into()]
}

/// Created Monday 2026-01-05 09:00 New York: first response 60 min, resolution 8 h, next
/// response 2 h, all on the 9-17 weekday calendar.
fn ticket() -> SlaClocks {
    let targets = [
        target(Metric::FirstResponse, 60),
        target(Metric::Resolution, 480),
        target(Metric::NextResponse, 120),
    ];
    SlaClocks::start(&targets, at("2026-01-05T09:00"), "new", &paused())
}

#[test]
fn clocks_start_at_creation_and_read_elapsed_remaining_percent() {
    let (t, cals) = (ticket(), calendars());
    let r = t
        .reading(Metric::FirstResponse, at("2026-01-05T09:30"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!(r.state, ClockState::Running);
    assert_eq!((r.elapsed_secs, r.remaining_secs), (1800, 1800));
    assert_eq!(r.percent_elapsed, 50.0);
    assert_eq!(r.due, Some(at("2026-01-05T10:00")));
    assert_eq!(r.breached_at, None);
    let res = t
        .reading(Metric::Resolution, at("2026-01-05T09:30"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!(res.due, Some(at("2026-01-05T17:00")));
    // next_response waits for a requester reply.
    assert!(
        t.reading(Metric::NextResponse, at("2026-01-05T09:30"), &cals)
            .unwrap()
            .is_none()
    );
    assert_eq!(t.readings(at("2026-01-05T09:30"), &cals).unwrap().len(), 2);
}

#[test]
fn a_paused_status_stops_the_clock_and_moves_due_by_paused_business_time() {
    let (mut t, cals) = (ticket(), calendars());
    t.set_status("pending_customer", &paused(), at("2026-01-05T09:30"))
        .unwrap();
    assert!(t.is_paused());
    let r = t
        .reading(Metric::FirstResponse, at("2026-01-05T11:00"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.state, r.due, r.elapsed_secs),
        (ClockState::Paused, None, 1800)
    );
    // Another paused status keeps it paused; leaving them resumes.
    t.set_status("pending_vendor", &paused(), at("2026-01-05T12:00"))
        .unwrap();
    t.set_status("open", &paused(), at("2026-01-05T14:00"))
        .unwrap();
    let r = t
        .reading(Metric::FirstResponse, at("2026-01-05T14:00"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.state, r.due),
        (ClockState::Running, Some(at("2026-01-05T14:30")))
    );
    // A pause over closed hours only moves due by the business time in it.
    let res = t
        .reading(Metric::Resolution, at("2026-01-05T14:00"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!(res.due, Some(at("2026-01-06T13:30")));
    t.set_status("pending_customer", &paused(), at("2026-01-05T16:00"))
        .unwrap();
    t.set_status("open", &paused(), at("2026-01-06T10:00"))
        .unwrap();
    let res = t
        .reading(Metric::Resolution, at("2026-01-06T10:00"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!(res.due, Some(at("2026-01-06T15:30")));
}

#[test]
fn a_response_meets_first_response_and_cancels_later_escalations() {
    let (mut t, cals) = (ticket(), calendars());
    let plan = [
        step(Metric::FirstResponse, EscalationTrigger::PercentElapsed(50)),
        step(
            Metric::FirstResponse,
            EscalationTrigger::MinutesBeforeDue(10),
        ),
        step(Metric::Resolution, EscalationTrigger::PercentElapsed(75)),
    ];
    t.respond(at("2026-01-05T09:45")).unwrap();
    let r = t
        .reading(Metric::FirstResponse, at("2026-01-05T12:00"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!(r.state, ClockState::Met);
    assert_eq!(r.stopped_at, Some(at("2026-01-05T09:45")));
    assert_eq!(r.elapsed_secs, 45 * 60);
    assert_eq!(r.due, Some(at("2026-01-05T10:00")));
    let e = t.escalations(&plan, &cals).unwrap();
    assert_eq!(e[0].at, Some(at("2026-01-05T09:30")), "already fired");
    assert_eq!(e[1].at, None, "cancelled by the response");
    assert_eq!(e[2].at, Some(at("2026-01-05T15:00")));
}

#[test]
fn a_clock_breaches_at_due_and_a_late_response_stays_breached() {
    let (mut t, cals) = (ticket(), calendars());
    let read = |t: &SlaClocks, now| {
        t.reading(Metric::FirstResponse, at(now), &cals)
            .unwrap()
            .unwrap()
    };
    assert_eq!(read(&t, "2026-01-05T09:59:59").state, ClockState::Running);
    let r = read(&t, "2026-01-05T10:00");
    assert_eq!(
        (r.state, r.breached_at),
        (ClockState::Breached, Some(at("2026-01-05T10:00")))
    );
    assert_eq!(read(&t, "2026-01-05T10:30").remaining_secs, -1800);
    assert_eq!(read(&t, "2026-01-05T10:30").percent_elapsed, 150.0);
    // Pausing after the breach keeps it breached, with its due in the past.
    t.set_status("pending_customer", &paused(), at("2026-01-05T10:30"))
        .unwrap();
    let r = read(&t, "2026-01-05T11:00");
    assert_eq!(
        (r.state, r.due),
        (ClockState::Breached, Some(at("2026-01-05T10:00")))
    );
    t.set_status("open", &paused(), at("2026-01-05T11:00"))
        .unwrap();
    t.respond(at("2026-01-05T11:30")).unwrap();
    let r = read(&t, "2026-01-05T12:00");
    assert_eq!((r.state, r.elapsed_secs), (ClockState::Breached, 120 * 60));
    assert_eq!(r.stopped_at, Some(at("2026-01-05T11:30")));
}

#[test]
fn a_priority_change_recomputes_from_the_original_start() {
    let (mut t, cals) = (ticket(), calendars());
    t.set_status("pending_customer", &paused(), at("2026-01-05T10:00"))
        .unwrap();
    t.set_status("open", &paused(), at("2026-01-05T11:00"))
        .unwrap();
    // P3 -> P1 at 12:00: resolution 480 -> 240 minutes, 2 h already elapsed (1 h paused).
    let p1 = [
        target(Metric::FirstResponse, 15),
        target(Metric::Resolution, 240),
    ];
    t.change_targets(&p1, at("2026-01-05T12:00")).unwrap();
    let r = t
        .reading(Metric::Resolution, at("2026-01-05T12:00"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.elapsed_secs, r.due),
        (7200, Some(at("2026-01-05T14:00")))
    );
    assert_eq!(r.started_at, at("2026-01-05T09:00"));
    // First response is now 15 minutes: breached retroactively at 09:15.
    let r = t
        .reading(Metric::FirstResponse, at("2026-01-05T12:00"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.state, r.breached_at),
        (ClockState::Breached, Some(at("2026-01-05T09:15")))
    );
    // next_response lost its target: nothing started, nothing to cancel. Dropping the first
    // response target cancels its clock and its escalations.
    t.change_targets(&[target(Metric::Resolution, 240)], at("2026-01-05T12:30"))
        .unwrap();
    let r = t
        .reading(Metric::FirstResponse, at("2026-01-05T13:00"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!(r.state, ClockState::Cancelled);
    let plan = [step(
        Metric::FirstResponse,
        EscalationTrigger::MinutesAfterDue(600),
    )];
    assert_eq!(t.escalations(&plan, &cals).unwrap()[0].at, None);
    // A target that appears later counts from creation, with the pause history.
    let mut with_new = t.clone();
    with_new
        .change_targets(
            &[
                target(Metric::Resolution, 240),
                target(Metric::FirstResponse, 300),
            ],
            at("2026-01-05T13:00"),
        )
        .unwrap();
    let r = with_new
        .reading(Metric::FirstResponse, at("2026-01-05T13:00"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.state, r.due),
        (ClockState::Running, Some(at("2026-01-05T15:00")))
    );
}

#[test]
fn a_new_target_after_the_response_is_already_met() {
    let targets = [target(Metric::Resolution, 480)];
    let mut t = SlaClocks::start(&targets, at("2026-01-05T09:00"), "new", &paused());
    t.respond(at("2026-01-05T09:20")).unwrap();
    t.change_targets(
        &[
            target(Metric::Resolution, 480),
            target(Metric::FirstResponse, 30),
        ],
        at("2026-01-05T10:00"),
    )
    .unwrap();
    let r = t
        .reading(Metric::FirstResponse, at("2026-01-05T10:00"), &calendars())
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.state, r.stopped_at),
        (ClockState::Met, Some(at("2026-01-05T09:20")))
    );
}

#[test]
fn reopening_restarts_resolution_as_a_new_run() {
    let (mut t, cals) = (ticket(), calendars());
    let plan = [step(
        Metric::Resolution,
        EscalationTrigger::PercentElapsed(50),
    )];
    t.resolve(at("2026-01-05T12:00")).unwrap();
    let r = t
        .reading(Metric::Resolution, at("2026-01-05T12:00"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!((r.state, r.run), (ClockState::Met, 1));
    assert_eq!(t.escalations(&plan, &cals).unwrap()[0].at, None);
    // A resolution also meets the open first response.
    let fr = t
        .reading(Metric::FirstResponse, at("2026-01-05T12:00"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!(fr.state, ClockState::Breached);
    t.reopen(at("2026-01-06T10:00")).unwrap();
    let r = t
        .reading(Metric::Resolution, at("2026-01-06T10:00"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.state, r.run, r.elapsed_secs),
        (ClockState::Running, 2, 0)
    );
    assert_eq!(r.due, Some(at("2026-01-07T10:00")));
    let e = &t.escalations(&plan, &cals).unwrap()[0];
    assert_eq!((e.run, e.at), (2, Some(at("2026-01-06T14:00"))));
    // Reopening a ticket that is not resolved changes nothing.
    let before = t.clone();
    t.reopen(at("2026-01-06T11:00")).unwrap();
    assert_eq!(t.clocks, before.clocks);
}

#[test]
fn next_response_runs_from_a_requester_reply_to_the_next_response() {
    let (mut t, cals) = (ticket(), calendars());
    t.requester_replied(at("2026-01-05T09:10")).unwrap();
    assert!(
        t.clock(Metric::NextResponse).is_none(),
        "first response covers it"
    );
    t.respond(at("2026-01-05T09:20")).unwrap();
    t.requester_replied(at("2026-01-05T16:00")).unwrap();
    let r = t
        .reading(Metric::NextResponse, at("2026-01-05T16:00"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!((r.run, r.due), (1, Some(at("2026-01-06T10:00"))));
    t.requester_replied(at("2026-01-05T16:30")).unwrap();
    assert_eq!(
        t.clock(Metric::NextResponse).unwrap().started_at,
        at("2026-01-05T16:00")
    );
    t.respond(at("2026-01-06T09:00")).unwrap();
    t.requester_replied(at("2026-01-06T09:30")).unwrap();
    let r = t
        .reading(Metric::NextResponse, at("2026-01-06T09:30"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.run, r.state, r.due),
        (2, ClockState::Running, Some(at("2026-01-06T11:30")))
    );
}

#[test]
fn escalation_triggers_count_business_time_and_move_with_pauses() {
    let (mut t, cals) = (ticket(), calendars());
    let plan = [
        step(Metric::Resolution, EscalationTrigger::PercentElapsed(33)),
        step(Metric::Resolution, EscalationTrigger::MinutesBeforeDue(10)),
        step(Metric::Resolution, EscalationTrigger::MinutesAfterDue(30)),
        step(Metric::NextResponse, EscalationTrigger::PercentElapsed(50)),
    ];
    let e = t.escalations(&plan, &cals).unwrap();
    assert_eq!(e.len(), 3, "next_response has not started");
    // 33% of 480 min = 158.4 min, rounded up to the second: 11:38:24.
    assert_eq!(e[0].at, Some(at("2026-01-05T11:38:24")));
    assert_eq!(e[1].at, Some(at("2026-01-05T16:50")));
    assert_eq!(
        e[2].at,
        Some(at("2026-01-06T09:30")),
        "after due counts business minutes"
    );
    t.set_status("pending_customer", &paused(), at("2026-01-05T12:00"))
        .unwrap();
    let e = t.escalations(&plan, &cals).unwrap();
    assert_eq!(
        e[0].at,
        Some(at("2026-01-05T11:38:24")),
        "reached before the pause"
    );
    assert_eq!((e[1].at, e[2].at), (None, None), "paused");
    t.set_status("open", &paused(), at("2026-01-06T09:00"))
        .unwrap();
    let e = t.escalations(&plan, &cals).unwrap();
    assert_eq!(e[1].at, Some(at("2026-01-06T13:50")));
}

#[test]
fn a_ticket_created_in_a_paused_status_starts_paused() {
    let cals = calendars();
    let mut t = SlaClocks::start(
        &[target(Metric::Resolution, 60)],
        at("2026-01-05T09:00"),
        "pending_vendor",
        &paused(),
    );
    let r = t
        .reading(Metric::Resolution, at("2026-01-05T12:00"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.state, r.due, r.elapsed_secs),
        (ClockState::Paused, None, 0)
    );
    t.set_status("open", &paused(), at("2026-01-05T13:00"))
        .unwrap();
    let r = t
        .reading(Metric::Resolution, at("2026-01-05T13:00"), &cals)
        .unwrap()
        .unwrap();
    assert_eq!(r.due, Some(at("2026-01-05T14:00")));
}

#[test]
fn events_out_of_order_and_unknown_calendars_are_errors() {
    let mut t = ticket();
    let err = t.respond(at("2026-01-05T08:00")).unwrap_err();
    assert!(matches!(err, SlaError::OutOfOrder { .. }));
    assert!(
        err.to_string().contains("earlier than the previous one"),
        "{err}"
    );
    let err = t
        .reading(
            Metric::Resolution,
            at("2026-01-05T10:00"),
            &CalendarSet::default(),
        )
        .unwrap_err();
    assert_eq!(
        err,
        SlaError::Calendar(CalendarError::UnknownCalendar("office".into()))
    );
    assert_eq!(err.to_string(), "unknown calendar \"office\"");
}

#[test]
fn the_state_round_trips_through_json() {
    let mut t = ticket();
    t.set_status("pending_customer", &paused(), at("2026-01-05T09:50"))
        .unwrap();
    t.respond(at("2026-01-05T10:30")).unwrap();
    let json = serde_json::to_string(&t).unwrap();
    assert!(json.contains(r#""reason":"met""#), "{json}");
    assert!(json.contains(r#""metric":"first_response""#), "{json}");
    assert_eq!(serde_json::from_str::<SlaClocks>(&json).unwrap(), t);
    let reading = t
        .reading(Metric::FirstResponse, at("2026-01-05T11:00"), &calendars())
        .unwrap();
    let json = serde_json::to_string(&reading).unwrap();
    assert!(json.contains(r#""state":"met""#), "{json}");
}

/// Random pause/resume sequences on the office calendar: due is where elapsed reaches the
/// target, the state flips to breached exactly there, and each escalation instant is where
/// elapsed reaches its threshold.
fn pause_toggles() -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(60i64..3 * 86_400, 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn due_elapsed_and_escalations_agree(
        start in 0i64..28 * 86_400,
        minutes in 1u32..3000,
        gaps in pause_toggles(),
        percent in 1u8..=100,
        read_after in 0i64..10 * 86_400,
    ) {
        let cals = calendars();
        let created = at("2026-01-03T00:00") + SignedDuration::from_secs(start);
        let mut t = SlaClocks::start(&[target(Metric::Resolution, minutes)], created, "new", &paused());
        let mut now = created;
        for (i, gap) in gaps.iter().enumerate() {
            now += SignedDuration::from_secs(*gap);
            let status = if i % 2 == 0 { "pending_customer" } else { "open" };
            t.set_status(status, &paused(), now).unwrap();
        }
        let read_at = now + SignedDuration::from_secs(read_after);
        let r = t.reading(Metric::Resolution, read_at, &cals).unwrap().unwrap();
        let elapsed = |when: Timestamp| t.reading(Metric::Resolution, when, &cals).unwrap().unwrap().elapsed_secs;
        let target = i64::from(minutes) * 60;
        prop_assert_eq!(r.remaining_secs, target - r.elapsed_secs);
        match r.due {
            Some(due) => {
                prop_assert_eq!(elapsed(due), target);
                prop_assert!(elapsed(due - SignedDuration::from_secs(1)) < target);
                prop_assert_eq!(r.state == ClockState::Breached, due <= read_at);
            }
            None => {
                prop_assert!(t.is_paused());
                prop_assert_eq!(r.state, ClockState::Paused);
                prop_assert!(r.elapsed_secs < target);
            }
        }
        let plan = [step(Metric::Resolution, EscalationTrigger::PercentElapsed(percent))];
        let threshold = (target * i64::from(percent) + 99) / 100;
        match t.escalations(&plan, &cals).unwrap()[0].at {
            Some(fires) => {
                prop_assert_eq!(elapsed(fires), threshold);
                prop_assert!(elapsed(fires - SignedDuration::from_secs(1)) < threshold);
            }
            None => prop_assert!(t.is_paused() && elapsed(read_at.max(now)) < threshold),
        }
    }
}
