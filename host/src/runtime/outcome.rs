//! What an evaluation's call produced, turned into what the tenant sees: the budget armed
//! before the call, traps classified into the failure kinds of the contract (fuel, wall clock,
//! memory, stack, log, sleep, a panic with its message), the output measured, and the
//! decision validated against the tenant's calendars.

use super::*;

/// Installs, once per store, the check each epoch tick runs: the deadline is a time, not a
/// count of ticks, so a tick only makes the rule compare the clock with the deadline `arm`
/// set. Counting ticks stretched the deadline 3–4 times when a saturated machine woke the
/// ticker late.
pub(super) fn watch_deadline(store: &mut Store<State>) {
    store.epoch_deadline_callback(|store| {
        if Instant::now() >= store.data().deadline {
            Err(Trap::Interrupt.into())
        } else {
            Ok(wasmtime::UpdateDeadline::Continue(1))
        }
    });
}

/// Sets the fuel budget, the wall-clock deadline and the copy budget for one call.
pub(super) fn arm(store: &mut Store<State>, limits: &Limits) {
    store
        .set_fuel(limits.fuel)
        .expect("fuel is enabled in the engine config");
    store.data_mut().deadline = Instant::now() + limits.wall_clock();
    store.set_epoch_deadline(1);
    store.set_hostcall_fuel(copy_budget(limits));
}

/// The most host memory one value lifted out of the rule may take: its answer, or one host
/// call's arguments. wasmtime charges it while lifting, before anything is copied: each
/// string at its length, each list element at its host size. A decision that could be valid
/// has at most 64 elements in each of its three lists (64 bytes each on the host at most) and
/// at most `output_bytes` of text; a log line at most `log_bytes`. Anything bigger is refused
/// without being copied.
pub(super) fn copy_budget(limits: &Limits) -> usize {
    const LIST_ELEMENTS: usize = 3 * switchboard_rules::model::MAX_DECISION_ITEMS * 64;
    limits
        .output_bytes
        .max(limits.log_bytes)
        .saturating_add(LIST_ELEMENTS + 4096)
}

/// Whether `e` is wasmtime's refusal to copy past the copy budget (its error type is private,
/// so its message is matched; `tests/sandbox.rs` keeps the match honest).
fn is_copy_refusal(e: &wasmtime::Error) -> bool {
    e.chain().any(|c| {
        c.to_string()
            .contains("fuel allocated for hostcalls has been exhausted")
    })
}

pub(super) fn input_too_large(ctx: &EvalContext, event: &TicketEvent) -> Option<EvalFailure> {
    let size = event_size(event);
    (size > ctx.limits.input_bytes).then_some(EvalFailure::InputLimit {
        size: size as u64,
        limit: ctx.limits.input_bytes as u64,
    })
}

pub(super) fn failed(
    ctx: &EvalContext,
    event: &TicketEvent,
    start: Instant,
    failure: EvalFailure,
    fuel_used: u64,
    log: Vec<LogLine>,
) -> Evaluation {
    let elapsed = start.elapsed();
    Evaluation {
        outcome: Err(EvalError {
            tenant: ctx.tenant.clone(),
            version: ctx.version.clone(),
            ticket: event.ticket.id.clone(),
            failure,
            fuel_used,
            elapsed,
        }),
        fuel_used,
        elapsed,
        log,
    }
}

/// Turns what the call produced into an evaluation: traps classified, output measured, the
/// decision validated against the tenant's calendars.
pub(super) fn finish(
    ctx: &EvalContext,
    event: &TicketEvent,
    start: Instant,
    store: &mut Store<State>,
    result: wasmtime::Result<Raw>,
) -> Evaluation {
    let limits = &ctx.limits;
    let fuel_used = limits.fuel - store.get_fuel().unwrap_or(0);
    let log = store.data().take_log();
    let raw = match result {
        Ok(raw) => raw,
        Err(e) => {
            let failure = classify_trap(&e, limits, store.data().limiter.denied, &log);
            return failed(ctx, event, start, failure, fuel_used, log);
        }
    };
    let (size, outcome) = match raw {
        Raw::Decision(size, d) => (size, Ok(v0_1_0::decision_from_wit(*d))),
        Raw::RuleError(size, e) => (size, Err(v0_1_0::rule_error_from_wit(e))),
    };
    if size > limits.output_bytes {
        let failure = EvalFailure::OutputLimit {
            size: size as u64,
            limit: limits.output_bytes as u64,
        };
        return failed(ctx, event, start, failure, fuel_used, log);
    }
    let decision = match outcome {
        Ok(d) => d,
        Err(error) => {
            return failed(
                ctx,
                event,
                start,
                EvalFailure::RuleError { error },
                fuel_used,
                log,
            );
        }
    };
    if let Err(invalid) = decision.validate(|id| ctx.calendars.contains(id)) {
        return failed(ctx, event, start, invalid.into(), fuel_used, log);
    }
    Evaluation {
        outcome: Ok(decision),
        fuel_used,
        elapsed: start.elapsed(),
        log,
    }
}

/// What a rule returned, before conversion: its text size and the value.
pub(super) enum Raw {
    Decision(usize, Box<v0_1_0::wit::Decision>),
    RuleError(usize, v0_1_0::wit::RuleError),
}

/// Maps a wasmtime error to the failure the tenant should see.
pub(super) fn classify_trap(
    e: &wasmtime::Error,
    limits: &Limits,
    memory_denied: Option<u64>,
    log: &[LogLine],
) -> EvalFailure {
    if let Some(hit) = e.downcast_ref::<LimitHit>() {
        return match hit {
            LimitHit::Memory { requested, limit } => EvalFailure::MemoryLimit {
                requested: *requested,
                limit: *limit,
            },
            LimitHit::Log { attempted, limit } => EvalFailure::LogLimit {
                attempted: *attempted,
                limit: *limit,
            },
            LimitHit::Sleep => EvalFailure::Trap {
                message: hit.to_string(),
            },
        };
    }
    if is_copy_refusal(e) {
        return EvalFailure::CopyLimit {
            limit: copy_budget(limits) as u64,
        };
    }
    if let Some(requested) = memory_denied {
        return EvalFailure::MemoryLimit {
            requested,
            limit: limits.memory_bytes,
        };
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => EvalFailure::FuelExhausted { limit: limits.fuel },
        Some(Trap::Interrupt) => EvalFailure::WallClock {
            limit_ms: limits.wall_clock_ms,
        },
        Some(Trap::StackOverflow) => EvalFailure::StackOverflow {
            limit: limits::MAX_WASM_STACK_BYTES as u64,
        },
        Some(trap) => EvalFailure::Trap {
            message: match trap {
                Trap::UnreachableCodeReached => match panic_message(log) {
                    Some(message) => format!("the rule panicked: {message}"),
                    None => "unreachable code reached (the rule aborted)".to_owned(),
                },
                Trap::MemoryOutOfBounds => "out of bounds memory access (in a Rust rule this is \
                    often its shadow stack overflowing: deep recursion with large locals)"
                    .to_owned(),
                other => other.to_string(),
            },
        },
        None => EvalFailure::Trap {
            message: format!("{e:#}"),
        },
    }
}

/// The message of a Rust panic, from the lines std's panic hook wrote to stderr:
/// `thread '…' panicked at src/lib.rs:1:2:` followed by the message.
pub(super) fn panic_message(log: &[LogLine]) -> Option<String> {
    let at = log
        .iter()
        .position(|l| l.message.contains(" panicked at "))?;
    let message = log.get(at + 1)?.message.trim();
    (!message.is_empty()).then(|| message.to_owned())
}
