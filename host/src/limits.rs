//! Every sandbox limit in one place, with its default, so operators and tenants read the same
//! numbers the runtime enforces. Defaults follow Shopify Functions' (an instruction budget of
//! 11 million, 10 MiB of memory, a 1 MiB module): generous for routing logic, fatal for a
//! runaway rule long before it hurts a neighbour.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Largest linear memory any tenant may be granted (the size of a pooling-allocator slot).
pub const MAX_MEMORY_BYTES: u64 = 64 << 20;
/// Largest module any tenant may be granted (componentize-py's default build is 18.3 MB).
pub const MAX_MODULE_BYTES: usize = 32 << 20;
/// Longest wall-clock deadline any tenant may be granted.
pub const MAX_WALL_CLOCK: Duration = Duration::from_secs(5);
/// Native stack a rule may use (engine-wide; deeper recursion traps with a stack overflow).
pub const MAX_WASM_STACK_BYTES: usize = 512 << 10;
/// Granularity of the wall-clock deadline: the epoch ticker's period.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Per-tenant sandbox limits.
///
/// ## Defaults
/// | limit | default |
/// |---|---|
/// | `fuel` (instruction budget) | 11,000,000 |
/// | `memory_bytes` (linear memory) | 10 MiB |
/// | `module_bytes` (upload size) | 1 MiB |
/// | `wall_clock_ms` | 100 ms |
/// | `input_bytes` (text of the ticket event) | 256 KiB |
/// | `output_bytes` (text of the decision; each list element counts 8 bytes besides its text) | 64 KiB |
/// | `log_bytes` (rule log, `log` import and stdout/stderr together; each line counts 32 bytes besides its text) | 16 KiB |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Instruction budget per evaluation, in wasmtime fuel units (about one per instruction).
    #[schema(minimum = 1, maximum = 9223372036854775807_u64)]
    pub fuel: u64,
    /// Largest linear memory, in bytes (at most [`MAX_MEMORY_BYTES`]).
    #[schema(minimum = 1, maximum = 67108864)]
    pub memory_bytes: u64,
    /// Largest module accepted at upload, in bytes (at most [`MAX_MODULE_BYTES`]).
    #[schema(minimum = 1, maximum = 33554432)]
    pub module_bytes: usize,
    /// Wall-clock deadline per evaluation, in milliseconds (at most [`MAX_WALL_CLOCK`]).
    #[schema(minimum = 1, maximum = 5000)]
    pub wall_clock_ms: u64,
    /// Largest ticket event handed to a rule: the bytes of all its text fields.
    #[schema(minimum = 1, maximum = 16777216)]
    pub input_bytes: usize,
    /// Largest decision or rule error a rule may return: the bytes of all its text fields.
    #[schema(minimum = 1, maximum = 16777216)]
    pub output_bytes: usize,
    /// Largest rule log per evaluation, in bytes; writing past it fails the evaluation.
    #[schema(minimum = 1, maximum = 16777216)]
    pub log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::NATIVE
    }
}

/// The toolchain a rule component was built with, as its own metadata says: the component's
/// `producers` section (componentize-js writes `language: JavaScript`) or the names of its
/// core modules (componentize-py links `libpython3.*.so`). Anything else, the Rust SDK
/// included, is `native`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Toolchain {
    /// Rust with the SDK, hand-written WAT, and any toolchain not recognised.
    #[default]
    Native,
    /// componentize-js (an embedded SpiderMonkey).
    Javascript,
    /// componentize-py (an embedded CPython).
    Python,
}

impl Toolchain {
    /// The toolchain's name as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Toolchain::Native => "native",
            Toolchain::Javascript => "javascript",
            Toolchain::Python => "python",
        }
    }
}

/// Per-toolchain limits besides the tenant's `limits` (which apply to native rules). Each is
/// read as changes over the toolchain's defaults, so `{"python": {"fuel": 90000000}}` keeps
/// every other Python default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
// Both may be left out (the custom `Deserialize` below fills them): the schema says so.
#[serde(default)]
pub struct ToolchainLimits {
    /// Limits for componentize-js rules (defaults: [`Limits::JAVASCRIPT`]).
    pub javascript: Limits,
    /// Limits for componentize-py rules (defaults: [`Limits::PYTHON`]).
    pub python: Limits,
}

impl Default for ToolchainLimits {
    fn default() -> Self {
        ToolchainLimits {
            javascript: Limits::JAVASCRIPT,
            python: Limits::PYTHON,
        }
    }
}

/// Some limits of one toolchain, as a tenant writes them: a limit left out keeps the
/// toolchain's default; `null` is refused like any other value that is not a number.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsPatch {
    #[serde(default, deserialize_with = "present")]
    fuel: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    memory_bytes: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    module_bytes: Option<usize>,
    #[serde(default, deserialize_with = "present")]
    wall_clock_ms: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    input_bytes: Option<usize>,
    #[serde(default, deserialize_with = "present")]
    output_bytes: Option<usize>,
    #[serde(default, deserialize_with = "present")]
    log_bytes: Option<usize>,
}

/// A field that, when present, must hold a value (`null` is not one).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl LimitsPatch {
    fn over(self, base: Limits) -> Limits {
        Limits {
            fuel: self.fuel.unwrap_or(base.fuel),
            memory_bytes: self.memory_bytes.unwrap_or(base.memory_bytes),
            module_bytes: self.module_bytes.unwrap_or(base.module_bytes),
            wall_clock_ms: self.wall_clock_ms.unwrap_or(base.wall_clock_ms),
            input_bytes: self.input_bytes.unwrap_or(base.input_bytes),
            output_bytes: self.output_bytes.unwrap_or(base.output_bytes),
            log_bytes: self.log_bytes.unwrap_or(base.log_bytes),
        }
    }
}

impl<'de> Deserialize<'de> for ToolchainLimits {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Patches {
            #[serde(default)]
            javascript: LimitsPatch,
            #[serde(default)]
            python: LimitsPatch,
        }
        let p = Patches::deserialize(d)?;
        Ok(ToolchainLimits {
            javascript: p.javascript.over(Limits::JAVASCRIPT),
            python: p.python.over(Limits::PYTHON),
        })
    }
}

/// The limits a tenant's rules run under, one set per toolchain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleLimits {
    /// Native rules (the tenant's `limits`).
    pub native: Limits,
    /// componentize-js rules.
    pub javascript: Limits,
    /// componentize-py rules.
    pub python: Limits,
}

impl Default for RuleLimits {
    fn default() -> Self {
        RuleLimits::new(Limits::NATIVE, ToolchainLimits::default())
    }
}

impl From<&Limits> for RuleLimits {
    fn from(limits: &Limits) -> Self {
        RuleLimits::uniform(*limits)
    }
}

impl From<&RuleLimits> for RuleLimits {
    fn from(limits: &RuleLimits) -> Self {
        *limits
    }
}

impl RuleLimits {
    /// The tenant's native limits beside its per-toolchain ones.
    pub fn new(native: Limits, toolchains: ToolchainLimits) -> Self {
        RuleLimits {
            native,
            javascript: toolchains.javascript,
            python: toolchains.python,
        }
    }

    /// The same limits for every toolchain (`rules run --limits`).
    pub fn uniform(limits: Limits) -> Self {
        RuleLimits {
            native: limits,
            javascript: limits,
            python: limits,
        }
    }

    /// The limits of `toolchain`.
    pub fn get(&self, toolchain: Toolchain) -> &Limits {
        match toolchain {
            Toolchain::Native => &self.native,
            Toolchain::Javascript => &self.javascript,
            Toolchain::Python => &self.python,
        }
    }

    /// Each set with `f` applied.
    pub fn map(&self, f: impl Fn(&Limits) -> Limits) -> Self {
        RuleLimits {
            native: f(&self.native),
            javascript: f(&self.javascript),
            python: f(&self.python),
        }
    }
}

/// A limit set above what the engine can grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit {name} = {value} is out of range: it must be 1 to {max}")]
pub struct LimitOutOfRange {
    /// The limit's name.
    pub name: &'static str,
    /// The value asked for.
    pub value: u64,
    /// The largest value allowed.
    pub max: u64,
}

impl Limits {
    /// The defaults for native rules (Rust with the SDK, and anything not recognised): near
    /// Shopify Functions'.
    pub const NATIVE: Limits = Limits {
        fuel: 11_000_000,
        memory_bytes: 10 << 20,
        module_bytes: 1 << 20,
        wall_clock_ms: 100,
        input_bytes: 256 << 10,
        output_bytes: 64 << 10,
        log_bytes: 16 << 10,
    };

    /// The defaults for componentize-js rules. Measured on 0.23.0: a default build is
    /// 12.1 MB, starts with 9 MiB of memory (145 pages), and spends about 2.4 million fuel
    /// on a trivial rule, where SpiderMonkey's interpreter pays many instructions per line of
    /// JavaScript.
    pub const JAVASCRIPT: Limits = Limits {
        fuel: 60_000_000,
        memory_bytes: 32 << 20,
        module_bytes: 16 << 20,
        ..Limits::NATIVE
    };

    /// The defaults for componentize-py rules. Measured on 0.25.1: a default build is
    /// 18.3 MB and starts with 12.3 MiB of memory (197 pages).
    pub const PYTHON: Limits = Limits {
        fuel: 60_000_000,
        memory_bytes: 40 << 20,
        module_bytes: 24 << 20,
        ..Limits::NATIVE
    };

    /// The most the engine can grant for each limit: the default platform caps.
    pub const MAX: Limits = Limits {
        fuel: u64::MAX / 2,
        memory_bytes: MAX_MEMORY_BYTES,
        module_bytes: MAX_MODULE_BYTES,
        wall_clock_ms: MAX_WALL_CLOCK.as_millis() as u64,
        input_bytes: 16 << 20,
        output_bytes: 16 << 20,
        log_bytes: 16 << 20,
    };

    /// The wall-clock deadline.
    pub fn wall_clock(&self) -> Duration {
        Duration::from_millis(self.wall_clock_ms)
    }

    fn fields(&self) -> [(&'static str, u64); 7] {
        [
            ("fuel", self.fuel),
            ("memory_bytes", self.memory_bytes),
            ("module_bytes", self.module_bytes as u64),
            ("wall_clock_ms", self.wall_clock_ms),
            ("input_bytes", self.input_bytes as u64),
            ("output_bytes", self.output_bytes as u64),
            ("log_bytes", self.log_bytes as u64),
        ]
    }

    /// Checks every limit against what the engine can grant.
    pub fn validate(&self) -> Result<(), LimitOutOfRange> {
        self.validate_within(&Limits::MAX)
    }

    /// Checks every limit against `caps` (the platform's caps, themselves within
    /// [`Limits::MAX`]).
    pub fn validate_within(&self, caps: &Limits) -> Result<(), LimitOutOfRange> {
        for ((name, value), (_, cap)) in self.fields().into_iter().zip(caps.fields()) {
            if value == 0 || value > cap {
                return Err(LimitOutOfRange {
                    name,
                    value,
                    max: cap,
                });
            }
        }
        Ok(())
    }

    /// Each limit lowered to its cap: what a tenant gets when its settings predate a lower
    /// platform cap.
    pub fn capped(&self, caps: &Limits) -> Limits {
        Limits {
            fuel: self.fuel.min(caps.fuel),
            memory_bytes: self.memory_bytes.min(caps.memory_bytes),
            module_bytes: self.module_bytes.min(caps.module_bytes),
            wall_clock_ms: self.wall_clock_ms.min(caps.wall_clock_ms),
            input_bytes: self.input_bytes.min(caps.input_bytes),
            output_bytes: self.output_bytes.min(caps.output_bytes),
            log_bytes: self.log_bytes.min(caps.log_bytes),
        }
    }

    /// Each limit still at its value in `defaults` lowered to its cap: a toolchain's defaults
    /// may be above a platform cap, and a tenant that never set them must not be refused
    /// for them; a value the tenant did set is left for [`Limits::validate_within`] to judge.
    pub fn defaults_within(&self, defaults: &Limits, caps: &Limits) -> Limits {
        let fit = |v: u64, d: u64, c: u64| if v == d { v.min(c) } else { v };
        let fit_usize = |v: usize, d: usize, c: usize| if v == d { v.min(c) } else { v };
        Limits {
            fuel: fit(self.fuel, defaults.fuel, caps.fuel),
            memory_bytes: fit(self.memory_bytes, defaults.memory_bytes, caps.memory_bytes),
            module_bytes: fit_usize(self.module_bytes, defaults.module_bytes, caps.module_bytes),
            wall_clock_ms: fit(
                self.wall_clock_ms,
                defaults.wall_clock_ms,
                caps.wall_clock_ms,
            ),
            input_bytes: fit_usize(self.input_bytes, defaults.input_bytes, caps.input_bytes),
            output_bytes: fit_usize(self.output_bytes, defaults.output_bytes, caps.output_bytes),
            log_bytes: fit_usize(self.log_bytes, defaults.log_bytes, caps.log_bytes),
        }
    }

    /// Platform caps from `name=value` pairs separated by commas (`wall_clock_ms=1000,
    /// fuel=50000000`); limits not named keep their [`Limits::MAX`].
    pub fn parse_caps(spec: &str) -> Result<Limits, String> {
        let mut caps = serde_json::to_value(Limits::MAX).map_err(|e| e.to_string())?;
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("limit cap {pair:?} is not NAME=VALUE"))?;
            let value: u64 = value
                .trim()
                .parse()
                .map_err(|_| format!("limit cap {name}: {value:?} is not a whole number"))?;
            let slot = caps
                .get_mut(name.trim())
                .ok_or_else(|| format!("limit cap {name:?} is not a limit"))?;
            *slot = value.into();
        }
        let caps: Limits = serde_json::from_value(caps).map_err(|e| e.to_string())?;
        caps.validate().map_err(|e| format!("limit cap: {e}"))?;
        Ok(caps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let l = Limits::default();
        assert_eq!(l.validate(), Ok(()));
        assert_eq!(
            (l.fuel, l.memory_bytes, l.module_bytes),
            (11_000_000, 10 << 20, 1 << 20)
        );
    }

    #[test]
    fn out_of_range_limits_are_named() {
        let l = Limits {
            memory_bytes: 1 << 30,
            ..Limits::default()
        };
        let err = l.validate().unwrap_err();
        assert_eq!(err.name, "memory_bytes");
        let l: Limits = serde_json::from_str(r#"{"fuel": 5}"#).unwrap();
        assert_eq!((l.fuel, l.log_bytes), (5, 16 << 10));
        assert!(serde_json::from_str::<Limits>(r#"{"fuel_units": 5}"#).is_err());
    }

    #[test]
    fn toolchain_limits_are_changes_over_each_toolchains_defaults() {
        let t: ToolchainLimits = serde_json::from_str(r#"{"python": {"fuel": 90000000}}"#).unwrap();
        assert_eq!(t.javascript, Limits::JAVASCRIPT);
        assert_eq!(t.python.fuel, 90_000_000);
        assert_eq!(t.python.memory_bytes, Limits::PYTHON.memory_bytes);
        assert!(serde_json::from_str::<ToolchainLimits>(r#"{"go": {}}"#).is_err());
        assert!(serde_json::from_str::<ToolchainLimits>(r#"{"python": {"fuell": 1}}"#).is_err());
        assert!(
            serde_json::from_str::<ToolchainLimits>(r#"{"python": {"log_bytes": null}}"#).is_err()
        );
        // What a GET shows, a PUT takes back unchanged.
        let round: ToolchainLimits =
            serde_json::from_value(serde_json::to_value(t).unwrap()).unwrap();
        assert_eq!(round, t);
        for l in [Limits::JAVASCRIPT, Limits::PYTHON] {
            assert_eq!(l.validate(), Ok(()));
        }
        let table = RuleLimits::default();
        assert_eq!(table.get(Toolchain::Python).module_bytes, 24 << 20);
        assert_eq!(table.get(Toolchain::Native), &Limits::default());
    }

    #[test]
    fn platform_caps_bound_what_a_tenant_may_set() {
        let caps = Limits::parse_caps("wall_clock_ms=1000, fuel=50000000").unwrap();
        assert_eq!((caps.wall_clock_ms, caps.fuel), (1000, 50_000_000));
        assert_eq!(caps.memory_bytes, MAX_MEMORY_BYTES);
        let asked = Limits {
            wall_clock_ms: 5000,
            ..Limits::default()
        };
        let err = asked.validate_within(&caps).unwrap_err();
        assert_eq!(
            (err.name, err.value, err.max),
            ("wall_clock_ms", 5000, 1000)
        );
        assert_eq!(asked.capped(&caps).wall_clock_ms, 1000);
        // A toolchain's defaults above a cap are lowered to it; a value set above it is not.
        let js = Limits::JAVASCRIPT.defaults_within(&Limits::JAVASCRIPT, &caps);
        assert_eq!((js.fuel, js.validate_within(&caps)), (50_000_000, Ok(())));
        let set = Limits {
            fuel: 70_000_000,
            ..Limits::JAVASCRIPT
        };
        assert_eq!(
            set.defaults_within(&Limits::JAVASCRIPT, &caps).fuel,
            70_000_000
        );
        assert_eq!(Limits::default().validate_within(&caps), Ok(()));
        for bad in ["wall_clock=5", "fuel=lots", "wall_clock_ms=6000", "fuel"] {
            assert!(Limits::parse_caps(bad).is_err(), "{bad}");
        }
    }
}
