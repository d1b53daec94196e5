//! The `switchboard` command line. Rule authors check and try modules locally with exactly
//! the sandbox and limits the service applies, so "works on my machine" means "works in
//! production".

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde::Serialize;
use switchboard_rules::{Calendar, CalendarSet, CalendarSpec, TicketEvent, TicketInput};

use crate::limits::{Limits, RuleLimits, Toolchain};
use crate::runtime::{EvalContext, Runtime, RuntimeConfig};

mod backup;
mod replay;

/// Switchboard: SLA and routing engine for co-managed IT.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: the HTTP API on an embedded redb store, or on PostgreSQL.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Data directory (holds the redb file and the compiled-rule cache).
        #[arg(
            long,
            env = "SWITCHBOARD_DATA_DIR",
            default_value = "./switchboard-data"
        )]
        data_dir: PathBuf,
        /// `postgres://…`: keep the state in this PostgreSQL database, which several nodes
        /// may share; unset, the embedded redb file in the data directory.
        #[arg(long, env = "SWITCHBOARD_DATABASE_URL", hide_env_values = true)]
        database: Option<String>,
        /// Platform admin token (creates tenants); generated and printed once when unset.
        #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// Comma-separated hosts or CIDR ranges webhook URLs may point into besides public
        /// addresses (loopback and private ranges are refused unless listed).
        #[arg(long, env = "SWITCHBOARD_WEBHOOK_ALLOW", default_value = "")]
        webhook_allow: String,
        /// Comma-separated `limit=value` caps on what a tenant admin may raise the sandbox
        /// limits to (for example `wall_clock_ms=1000,fuel=50000000`); unnamed limits keep
        /// the engine's maximum.
        #[arg(long, env = "SWITCHBOARD_LIMIT_CAPS", default_value = "")]
        limit_caps: String,
        /// Evaluations one tenant may run at once (default: the number of CPUs, at least 2);
        /// a tenant's further tickets wait for its own turn, never another tenant's.
        #[arg(long, env = "SWITCHBOARD_TENANT_EVALUATIONS")]
        tenant_evaluations: Option<u32>,
    },
    /// Work with rule modules locally.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Save a consistent copy of a running server's store, taken online
    /// (`GET /v1/backup`, with the platform admin token).
    Backup {
        /// The file to write; it must not exist yet.
        #[arg(long)]
        to: PathBuf,
        /// The server's address.
        #[arg(long, env = "SWITCHBOARD_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Platform admin token.
        #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
    },
    /// Put a backup in place of a data directory's store. The server on that directory must
    /// be stopped; the store it had is kept beside it.
    Restore {
        /// The backup file (from `switchboard backup`).
        file: PathBuf,
        /// Data directory to restore into.
        #[arg(
            long,
            env = "SWITCHBOARD_DATA_DIR",
            default_value = "./switchboard-data"
        )]
        data_dir: PathBuf,
    },
}

/// `switchboard rules …`
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate a module: a component, within its toolchain's size limit, importing only what
    /// the sandbox offers, implementing a supported contract version, and able to start and
    /// answer a sample ticket within its limits.
    Check {
        /// The module (`.wasm` component).
        module: PathBuf,
        /// Limits as JSON (default: the service's defaults).
        #[arg(long)]
        limits: Option<PathBuf>,
        /// Where compiled modules are kept.
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Evaluate a module on tickets: one JSON line per ticket with the decision (or error),
    /// fuel used and the rule log.
    Run {
        /// The module (`.wasm` component).
        module: PathBuf,
        /// Tickets: a JSON array of tickets (or one ticket object), as the API takes them.
        tickets: PathBuf,
        /// The tenant's config, calendars and limits, and the compiled-module cache.
        #[command(flatten)]
        tenant: TenantArgs,
    },
    /// Replay history with a candidate module: the tickets of an export (`GET
    /// …/tickets/export`, NDJSON) evaluated with CANDIDATE and with the module (or the
    /// decisions stored in the export) it is compared with; prints the summary the service's
    /// replay answers. A rule that fails falls back to the built-in fallback decision.
    Replay {
        /// The candidate module (`.wasm` component).
        candidate: PathBuf,
        /// The module to compare with, or `stored` for the decisions in the export.
        #[arg(long)]
        against: String,
        /// The export: one JSON object per line.
        tickets: PathBuf,
        /// The tenant's config, calendars and limits, and the compiled-module cache.
        #[command(flatten)]
        tenant: TenantArgs,
    },
    /// Create a rule project with a test, ready to build: `NAME/` in the current directory.
    New {
        /// The project's name (lowercase letters, digits and `-`).
        name: String,
        /// The language.
        #[arg(long, value_enum)]
        lang: crate::scaffold::Lang,
        /// Where to create it (default: `./NAME`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The Rust SDK's directory (`guest-sdk/` of a Switchboard checkout; default: the one
        /// this binary was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

/// What `rules run` and `rules replay` evaluate with, standing in for a tenant's settings.
#[derive(Debug, clap::Args)]
pub struct TenantArgs {
    /// Tenant configuration: a JSON object of string values.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory of calendars: `<id>.json` files in the API's calendar format.
    #[arg(long)]
    calendars: Option<PathBuf>,
    /// Limits as JSON (default: the service's defaults).
    #[arg(long)]
    limits: Option<PathBuf>,
    /// Where compiled modules are kept.
    #[command(flatten)]
    cache: CacheArgs,
}

/// Where `rules check` and `rules run` keep compiled modules, so that checking a module and
/// then running it compiles it once.
#[derive(Debug, clap::Args)]
pub struct CacheArgs {
    /// Directory for compiled modules (default: `$XDG_CACHE_HOME/switchboard`, else
    /// `~/.cache/switchboard`).
    #[arg(long, env = "SWITCHBOARD_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

impl CacheArgs {
    fn runtime(&self) -> anyhow::Result<Runtime> {
        let home_cache = || {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|d| d.join("switchboard"))
        };
        let cache_dir = self.cache_dir.clone().or_else(home_cache);
        Ok(Runtime::new(RuntimeConfig {
            cache_dir,
            ..RuntimeConfig::default()
        })?)
    }
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let bytes = read(path)?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not valid {what}", path.display()))
}

/// The limits of `--limits FILE` for every toolchain, or else each toolchain's defaults.
fn load_limits(path: Option<&Path>) -> anyhow::Result<RuleLimits> {
    match path {
        Some(p) => {
            let limits = read_json::<Limits>(p, "limits JSON")?;
            limits.validate()?;
            Ok(RuleLimits::uniform(limits))
        }
        None => Ok(RuleLimits::default()),
    }
}

/// Reads `<id>.json` calendar files from `dir`.
pub fn load_calendars(dir: &Path) -> anyhow::Result<CalendarSet> {
    let mut set = CalendarSet::default();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let id = path
            .file_stem()
            .and_then(|s| s.to_str())
            .with_context(|| format!("{} has no usable file name", path.display()))?
            .to_owned();
        let spec: CalendarSpec = read_json(&path, "calendar JSON")?;
        let calendar = Calendar::new(&spec)
            .with_context(|| format!("calendar {id:?} ({})", path.display()))?;
        set.insert(id, calendar);
    }
    Ok(set)
}

impl TenantArgs {
    /// The limits, the config of `--config FILE` and the calendars of `--calendars DIR`
    /// (each toolchain's defaults, none, and the built-in ones, when not given).
    fn load(&self) -> anyhow::Result<(RuleLimits, BTreeMap<String, String>, CalendarSet)> {
        let limits = load_limits(self.limits.as_deref())?;
        let config = match &self.config {
            Some(p) => read_json(p, "config JSON (an object of string values)")?,
            None => BTreeMap::new(),
        };
        let calendars = match &self.calendars {
            Some(dir) => load_calendars(dir)?,
            None => CalendarSet::default(),
        };
        Ok((limits, config, calendars))
    }
}

/// Parses the tickets file: an array of tickets or a single ticket.
fn load_tickets(path: &Path) -> anyhow::Result<Vec<TicketInput>> {
    let value: serde_json::Value = read_json(path, "JSON")?;
    let list = match value {
        serde_json::Value::Array(items) => items,
        other @ serde_json::Value::Object(_) => vec![other],
        _ => bail!(
            "{} must hold a JSON array of tickets or one ticket object",
            path.display()
        ),
    };
    list.into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value(v).with_context(|| {
                format!(
                    "{}: ticket #{} is not a valid ticket",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}

#[derive(Serialize)]
struct CheckReport<'a> {
    module: String,
    contract: String,
    /// The toolchain that built it, which chooses its limits.
    toolchain: Toolchain,
    size: usize,
    size_limit: usize,
    sha256: &'a str,
    imports: &'a [String],
    /// Whether the compiled module came from the cache (it was compiled before).
    cached: bool,
    /// The limits it was checked under.
    limits: Limits,
    /// How it did on the sample ticket it was started on.
    sample: SampleReport,
}

/// The sample evaluation of `rules check`.
#[derive(Serialize)]
struct SampleReport {
    /// `decision`, or the kind of error.
    outcome: &'static str,
    fuel: u64,
    elapsed_us: u64,
}

/// Runs a parsed command, writing results to `out`. Errors are the user's to read.
pub fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            data_dir,
            database,
            admin_token,
            webhook_allow,
            limit_caps,
            tenant_evaluations,
        } => crate::serve::serve(crate::serve::ServeConfig {
            listen,
            data_dir,
            database: database.filter(|d| !d.is_empty()),
            admin_token,
            webhook_allow: crate::webhooks::UrlPolicy::parse(&webhook_allow)?,
            limit_caps: crate::limits::Limits::parse_caps(&limit_caps)
                .map_err(|e| anyhow::anyhow!("--limit-caps: {e}"))?,
            tenant_evaluations,
        })?,
        Command::Backup {
            to,
            url,
            admin_token,
        } => backup::backup(&url, &admin_token, &to, out)?,
        Command::Restore { file, data_dir } => backup::restore(&file, &data_dir, out)?,
        Command::Rules(RulesCommand::New {
            name,
            lang,
            dir,
            sdk,
        }) => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let files = crate::scaffold::new_rule(&dir, &name, lang, sdk.as_deref())?;
            writeln!(out, "created {} ({} files)", dir.display(), files.len())?;
        }
        Command::Rules(RulesCommand::Check {
            module,
            limits,
            cache,
        }) => {
            let limits = load_limits(limits.as_deref())?;
            let bytes = read(&module)?;
            let runtime = cache.runtime()?;
            let invalid = || format!("{} is not a valid rule", module.display());
            let loaded = runtime.load(&bytes, limits).with_context(invalid)?;
            let applied = *limits.get(loaded.toolchain());
            let mut ctx = EvalContext::new("local", "check");
            ctx.limits = applied;
            let sample = runtime.probe(&loaded, &ctx).with_context(invalid)?;
            let report = CheckReport {
                module: module.display().to_string(),
                contract: format!(
                    "{}@{}",
                    switchboard_rules::contract::PACKAGE,
                    loaded.contract_version()
                ),
                toolchain: loaded.toolchain(),
                size: loaded.size(),
                size_limit: applied.module_bytes,
                limits: applied,
                sample: SampleReport {
                    outcome: match &sample.outcome {
                        Ok(_) => "decision",
                        Err(e) => e.failure.kind(),
                    },
                    fuel: sample.fuel_used,
                    elapsed_us: sample.elapsed.as_micros() as u64,
                },
                sha256: loaded.sha256(),
                imports: loaded.imports(),
                cached: loaded.from_cache(),
            };
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
        Command::Rules(RulesCommand::Run {
            module,
            tickets,
            tenant,
        }) => {
            let (limits, config, calendars) = tenant.load()?;
            let tickets = load_tickets(&tickets)?;
            let bytes = read(&module)?;
            let runtime = tenant.cache.runtime()?;
            let loaded = runtime
                .load(&bytes, limits)
                .with_context(|| format!("{} is not a valid rule", module.display()))?;
            let limits = *limits.get(loaded.toolchain());
            let ctx = EvalContext {
                tenant: "local".into(),
                version: loaded.sha256()[..12].to_owned(),
                config: Arc::new(config),
                calendars: Arc::new(calendars),
                limits,
            };
            let now = jiff::Timestamp::now();
            for input in tickets {
                let id = input.id.clone();
                let ticket = input
                    .into_ticket(now)
                    .with_context(|| format!("ticket {id:?}"))?;
                let eval = runtime.evaluate(&loaded, &ctx, &TicketEvent::created(ticket));
                let line = eval.report(&id);
                serde_json::to_writer(&mut *out, &line)?;
                writeln!(out)?;
            }
        }
        Command::Rules(RulesCommand::Replay {
            candidate,
            against,
            tickets,
            tenant,
        }) => {
            let (limits, config, calendars) = tenant.load()?;
            let local = replay::Local {
                runtime: Arc::new(tenant.cache.runtime()?),
                limits,
                config: Arc::new(config),
                calendars: Arc::new(calendars),
            };
            let summary = local.replay(&candidate, &against, &tickets)?;
            serde_json::to_writer_pretty(&mut *out, &summary)?;
            writeln!(out)?;
        }
    }
    Ok(())
}
