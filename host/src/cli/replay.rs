//! `switchboard rules replay`: the service's replay on a laptop, over an export of the
//! tenant's history, so a rule author sees what a change does to production tickets before
//! uploading it. It shares the service's comparison ([`crate::replay::Replayer`]).

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;
use switchboard_rules::{CalendarSet, builtin_fallback};

use crate::limits::RuleLimits;
use crate::replay::{Baseline, ExportLine, Figures, Replayer};
use crate::runtime::{EvalContext, RuleModule, Runtime};

/// What a local replay evaluates with.
pub(super) struct Local {
    pub(super) runtime: Arc<Runtime>,
    pub(super) limits: RuleLimits,
    pub(super) config: Arc<std::collections::BTreeMap<String, String>>,
    pub(super) calendars: Arc<CalendarSet>,
}

/// The summary `rules replay` prints.
#[derive(Debug, Serialize)]
pub(super) struct LocalSummary {
    /// The candidate's file and sha256.
    candidate: String,
    /// The module compared with (file and sha256), or `stored`.
    against: String,
    /// What the figures mean.
    basis: &'static str,
    /// The comparison.
    #[serde(flatten)]
    figures: Figures,
}

impl Local {
    fn load(&self, path: &Path) -> anyhow::Result<(RuleModule, EvalContext, String)> {
        let bytes = super::read(path)?;
        let module = self
            .runtime
            .load(&bytes, self.limits)
            .with_context(|| format!("{} is not a valid rule", path.display()))?;
        let label = format!("{} ({})", path.display(), &module.sha256()[..12]);
        let ctx = EvalContext {
            tenant: "local".into(),
            version: module.sha256()[..12].to_owned(),
            config: self.config.clone(),
            calendars: self.calendars.clone(),
            limits: *self.limits.get(module.toolchain()),
        };
        Ok((module, ctx, label))
    }

    /// Replays every line of `tickets` with `candidate` against `against` (a module's path,
    /// or `stored`).
    pub(super) fn replay(
        &self,
        candidate: &Path,
        against: &str,
        tickets: &Path,
    ) -> anyhow::Result<LocalSummary> {
        let (module, ctx, candidate_label) = self.load(candidate)?;
        let (baseline, against_label) = if against == "stored" {
            (Baseline::Stored, "stored".to_owned())
        } else {
            let (m, c, label) = self.load(Path::new(against))?;
            (Baseline::Module(m, c), label)
        };
        let mut replayer = Replayer::new(
            self.runtime.clone(),
            (module, ctx),
            baseline,
            Box::new(builtin_fallback),
        );
        let file = std::fs::File::open(tickets)
            .with_context(|| format!("cannot read {}", tickets.display()))?;
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("cannot read {}", tickets.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let entry: ExportLine = serde_json::from_str(&line).with_context(|| {
                format!(
                    "{} line {}: not an export line ({{id, created_at, routed_on, decision, rule}})",
                    tickets.display(),
                    i + 1
                )
            })?;
            replayer.add(&entry.id, &entry.routed_on, (&entry.decision, &entry.rule));
        }
        Ok(LocalSummary {
            candidate: candidate_label,
            against: against_label,
            basis: "the exported routing inputs, evaluated with --config, --calendars and --limits; a failing rule falls back to the built-in fallback decision",
            figures: replayer.finish(),
        })
    }
}
