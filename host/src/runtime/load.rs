//! Loading a module: what can be checked without compiling (so an upload answers at once),
//! compiling it (in the budgeted worker, through the artifact cache), linking it to the
//! contract, and starting it once on a sample ticket before it may be approved.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use switchboard_rules::model::TicketEvent;
use wasmtime::component::Component;

use super::{
    Compiler, EvalContext, EvalFailure, Evaluation, FailureClass, LoadError, ModuleInner, Pre,
    RuleModule, Runtime, StructureLimits, cache, compile, inspect, structure, v0_1_0, validate,
};
use crate::limits::{RuleLimits, Toolchain};

/// What [`Runtime::check`] found out about a module without compiling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Hex sha256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: usize,
    /// The contract version it implements.
    pub contract: String,
    /// The toolchain that built it.
    pub toolchain: Toolchain,
    /// Its imports.
    pub imports: Vec<String>,
}

/// The ticket [`Runtime::probe`] starts a rule on: only what every ticket has, at a fixed
/// instant (a Monday, 10:00 UTC), so the sample's clocks and random never depend on when it
/// was uploaded.
fn sample_event() -> TicketEvent {
    let now = jiff::Timestamp::from_second(1_772_445_600).expect("a valid instant");
    TicketEvent {
        kind: switchboard_rules::EventKind::Created,
        ticket: switchboard_rules::model::Ticket {
            id: "SAMPLE-1".into(),
            subject: "Sample ticket".into(),
            description: String::new(),
            category: None,
            service: None,
            source: None,
            impact: 3,
            urgency: 3,
            priority: None,
            status: "new".into(),
            requester: switchboard_rules::model::Requester {
                email: "requester@example.com".into(),
                department: None,
                vip: false,
            },
            tags: Vec::new(),
            fields: BTreeMap::new(),
            created_at: now,
            updated_at: now,
            queue: None,
            party: None,
        },
        at: now,
    }
}

impl Runtime {
    /// Checks what can be checked without compiling (`limits`: one set for every toolchain, or
    /// a [`RuleLimits`] table): a component, within its toolchain's
    /// size limit and the structural limits, importing only what a rule may, against a
    /// supported contract. Milliseconds even for an 18 MB module, so an upload can answer
    /// at once and compile afterwards.
    pub fn check(&self, bytes: &[u8], limits: impl Into<RuleLimits>) -> Result<Checked, LoadError> {
        let limits = limits.into();
        if !bytes.starts_with(b"\0asm") {
            return Err(LoadError::NotWasm);
        }
        if wasmparser::Parser::is_core_wasm(bytes) {
            return Err(LoadError::NotAComponent);
        }
        let inspection = match inspect::inspect(bytes) {
            Ok(inspection) => inspection,
            // What cannot be read has no toolchain: past the native limit, its size is the
            // first thing wrong with it.
            Err(_) if bytes.len() > limits.native.module_bytes => {
                return Err(LoadError::TooLarge {
                    size: bytes.len(),
                    limit: limits.native.module_bytes,
                    toolchain: Toolchain::Native,
                });
            }
            Err(e) => return Err(e),
        };
        let toolchain = inspection.toolchain;
        let limit = limits.get(toolchain).module_bytes;
        if bytes.len() > limit {
            return Err(LoadError::TooLarge {
                size: bytes.len(),
                limit,
                toolchain,
            });
        }
        structure::check(bytes, &StructureLimits::DEFAULT)?;
        let contract = validate::check_imports(inspection.imports.iter().map(String::as_str))?;
        Ok(Checked {
            sha256: hex::encode(Sha256::digest(bytes)),
            size: bytes.len(),
            contract,
            toolchain,
            imports: inspection.imports,
        })
    }

    /// Validates and compiles a module ([`Runtime::check`], then compiling and linking it
    /// with the `route` export). Uses (and fills) the artifact cache.
    pub fn load(
        &self,
        bytes: &[u8],
        limits: impl Into<RuleLimits>,
    ) -> Result<RuleModule, LoadError> {
        let checked = self.check(bytes, limits)?;
        let cached = self
            .cache
            .as_ref()
            .and_then(|c| c.get(&self.engine, &checked.sha256));
        let from_cache = cached.is_some();
        let (component, artifact) = match cached {
            Some(c) => (c, None),
            None => self.compile(bytes)?,
        };
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::NotARule(format!("{e:#}")))?;
        let pre = match checked.contract.as_str() {
            "0.1.0" => Pre::V0_1_0(
                v0_1_0::TicketRulesPre::new(instance_pre)
                    .map_err(|e| LoadError::NotARule(format!("{e:#}")))?,
            ),
            other => {
                return Err(LoadError::UnsupportedContract {
                    found: other.to_owned(),
                    supported: switchboard_rules::contract::SUPPORTED_VERSIONS.join(", "),
                });
            }
        };
        // Only a module that passed every check up to here is kept on disk.
        if let (Some(cache), Some(artifact)) = (&self.cache, artifact) {
            cache.put(&checked.sha256, &artifact)?;
        }
        Ok(RuleModule {
            inner: Arc::new(ModuleInner {
                sha256: checked.sha256,
                size: checked.size,
                contract: checked.contract,
                toolchain: checked.toolchain,
                imports: checked.imports,
                pre,
                from_cache,
            }),
        })
    }

    /// Starts `module` once on a sample ticket under `ctx`'s limits. A rule that cannot even
    /// start (its instantiation traps or needs more memory than allowed) or that runs out of
    /// fuel, memory or stack on the simplest ticket would fail on every ticket once active;
    /// it is refused with the reason instead of reaching approval. A rule error or a trap in
    /// the rule's own logic is not a reason: the rule may expect tickets unlike the sample.
    pub fn probe(&self, module: &RuleModule, ctx: &EvalContext) -> Result<Evaluation, LoadError> {
        let (eval, starting) = self.run(module, ctx, &sample_event());
        let refused = match &eval.outcome {
            // The wall clock depends on how busy the machine is, and a host failure (no free
            // slot) is not the rule's: neither may decide a refusal.
            Err(e) => match e.failure.class() {
                _ if matches!(e.failure, EvalFailure::WallClock { .. }) => false,
                FailureClass::Host => false,
                FailureClass::Limit => true,
                // Failing to start at all is refused; the rule's own logic failing on the
                // sample is not.
                _ => starting,
            },
            Ok(_) => false,
        };
        match &eval.outcome {
            Err(e) if refused => Err(LoadError::CannotStart {
                reason: e.failure.to_string(),
                toolchain: module.toolchain(),
            }),
            _ => Ok(eval),
        }
    }

    /// Compiles `bytes` (one of [`MAX_CONCURRENT_COMPILES`] at a time), returning the
    /// component and, when there is a cache to fill, its precompiled artifact.
    fn compile(&self, bytes: &[u8]) -> Result<(Component, Option<Vec<u8>>), LoadError> {
        let invalid = |e: wasmtime::Error| LoadError::Invalid(format!("{e:#}"));
        let _turn = self.compiles.acquire();
        let artifact = match &self.compiler {
            Compiler::InProcess if self.cache.is_none() => {
                return Ok((Component::new(&self.engine, bytes).map_err(invalid)?, None));
            }
            Compiler::InProcess => self.engine.precompile_component(bytes).map_err(invalid)?,
            Compiler::Worker { program, budget } => compile::in_worker(program, budget, bytes)?,
        };
        let component = cache::deserialize(&self.engine, &artifact).map_err(invalid)?;
        Ok((component, self.cache.is_some().then_some(artifact)))
    }
}
