//! The size bound of a dry-run answer: each report is bounded by the tenant's output and log
//! limits, but a hundred of them at raised limits would not be.

use serde_json::Value;

/// The most bytes of reports one dry-run answer carries. Each report is already bounded by
/// the tenant's output and log limits, but a hundred of them at raised limits would not be;
/// past this, a report loses its log, then its decision, keeping its outcome and fuel.
pub const DRY_RUN_ANSWER_BYTES: usize = 4 << 20;

/// What is left of a dry-run answer's size budget.
pub(super) struct AnswerBudget {
    left: usize,
}

/// Counts the bytes of JSON written to it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The size of `value` as JSON, without building the JSON.
fn json_size(value: &impl serde::Serialize) -> usize {
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value).map_or(usize::MAX, |()| counter.0)
}

impl AnswerBudget {
    pub(super) fn new(bytes: usize) -> Self {
        AnswerBudget { left: bytes }
    }

    /// The report of `eval` as it fits in what is left: whole, without its log (measured
    /// before it is turned into JSON, so a log that does not fit costs nothing more), or as a
    /// summary.
    pub(super) fn fit(&mut self, mut eval: crate::runtime::Evaluation, id: &str) -> Value {
        let log = std::mem::take(&mut eval.log);
        let mut report = eval.report(id);
        let mut size = json_size(&report);
        let log_size = json_size(&log);
        if size.saturating_add(log_size) <= self.left {
            report["log"] = serde_json::to_value(&log).unwrap_or_default();
            size += log_size;
        } else {
            report["log_omitted"] = log.len().into();
            size = json_size(&report);
        }
        if size > self.left {
            let outcome = match report.get("error") {
                Some(e) => e["kind"].clone(),
                None => "decision".into(),
            };
            report = serde_json::json!({
                "ticket": id,
                "omitted": "the dry-run answer reached its size limit",
                "outcome": outcome,
                "fuel": report["fuel"],
            });
            size = json_size(&report);
        }
        self.left = self.left.saturating_sub(size);
        report
    }
}

#[cfg(test)]
mod answer_tests {
    use super::*;
    use crate::runtime::{Evaluation, LogLine};
    use switchboard_rules::LogLevel;
    use switchboard_rules::model::{Decision, Party, Priority};

    fn eval() -> Evaluation {
        let line = LogLine {
            level: LogLevel::Info,
            message: "x".repeat(1000),
        };
        Evaluation {
            outcome: Ok(Decision {
                queue: "q".repeat(100),
                party: Party::Msp,
                tier: 1,
                priority: Priority::P3,
                sla: Vec::new(),
                escalations: Vec::new(),
                tags: Vec::new(),
                reason: "r".repeat(2000),
            }),
            fuel_used: 7,
            elapsed: std::time::Duration::ZERO,
            log: vec![line; 10],
        }
    }

    #[test]
    fn a_dry_run_answer_stays_within_its_budget() {
        let whole = eval().report("T-1");
        let size = json_size(&whole);
        assert_eq!(size, serde_json::to_vec(&whole).unwrap().len());
        let mut budget = AnswerBudget::new(size + 3000);
        assert_eq!(budget.fit(eval(), "T-1"), whole, "the first fits whole");
        let second = budget.fit(eval(), "T-1");
        assert_eq!(second["log"], serde_json::json!([]));
        assert_eq!(second["log_omitted"], 10);
        assert_eq!(second["decision"], whole["decision"]);
        let third = budget.fit(eval(), "T-1");
        assert_eq!(third["outcome"], "decision");
        assert_eq!(third["fuel"], 7);
        assert!(third.get("decision").is_none());
    }
}
