//! `switchboard rules new`: a rule project in Rust, JavaScript or Python that builds and tests
//! as it is written, so a tenant's first rule starts from something that works. The templates
//! and the JavaScript and Python SDKs are embedded in the binary; a Rust project depends on
//! the Rust SDK by path (the checkout this binary was built from, or `--sdk`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The language of a new rule project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust with `switchboard-sdk`, built with `cargo build --target wasm32-wasip2`.
    Rust,
    /// JavaScript, built with componentize-js.
    Js,
    /// Python, built with componentize-py.
    Python,
}

const WIT: &str = include_str!("../../rules/wit/v0.1.0/rules.wit");

/// (path in the project, contents) of every file of a `lang` project.
fn files(lang: Lang) -> Vec<(&'static str, &'static str)> {
    match lang {
        Lang::Rust => vec![
            ("Cargo.toml", include_str!("../templates/rust/Cargo.toml")),
            ("src/lib.rs", include_str!("../templates/rust/src/lib.rs")),
            (".gitignore", "/target\n"),
        ],
        Lang::Js => vec![
            ("package.json", include_str!("../templates/js/package.json")),
            ("rule.js", include_str!("../templates/js/rule.js")),
            ("main.js", include_str!("../templates/js/main.js")),
            ("rule.test.js", include_str!("../templates/js/rule.test.js")),
            (
                "lib/switchboard.js",
                include_str!("../../guest-sdk/js/switchboard.js"),
            ),
            (
                "lib/testing.js",
                include_str!("../../guest-sdk/js/testing.js"),
            ),
            ("wit/rules.wit", WIT),
            (".gitignore", "node_modules/\n*.wasm\n"),
        ],
        Lang::Python => vec![
            ("rule.py", include_str!("../templates/python/rule.py")),
            ("app.py", include_str!("../templates/python/app.py")),
            (
                "test_rule.py",
                include_str!("../templates/python/test_rule.py"),
            ),
            (
                "switchboard_sdk.py",
                include_str!("../../guest-sdk/python/switchboard_sdk.py"),
            ),
            (
                "switchboard_testing.py",
                include_str!("../../guest-sdk/python/switchboard_testing.py"),
            ),
            (
                "requirements.txt",
                include_str!("../../guest-sdk/python/requirements.txt"),
            ),
            ("wit/rules.wit", WIT),
            (".gitignore", "bindings/\n__pycache__/\n*.wasm\n"),
        ],
    }
}

/// Checks a project name: lowercase letters, digits and `-`, starting with a letter.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!(
            "rule name {name:?} must be 1 to 64 lowercase letters, digits and `-`, starting with a letter"
        );
    }
    Ok(())
}

/// The Rust SDK this binary was built beside, if that checkout is still there.
fn default_sdk() -> Option<PathBuf> {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk"))
        .canonicalize()
        .ok()
        .filter(|p| p.join("Cargo.toml").is_file())
}

/// Writes a `lang` rule project named `name` into `dir` (which must not exist or be empty)
/// and returns the files written. `sdk` is the Rust SDK's directory for a Rust project.
pub fn new_rule(
    dir: &Path,
    name: &str,
    lang: Lang,
    sdk: Option<&Path>,
) -> anyhow::Result<Vec<PathBuf>> {
    check_name(name)?;
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!("{} already exists and is not empty", dir.display());
    }
    let sdk = match (lang, sdk) {
        (Lang::Rust, Some(p)) => p
            .canonicalize()
            .with_context(|| format!("--sdk {}", p.display()))?,
        (Lang::Rust, None) => default_sdk().context(
            "the Rust SDK (guest-sdk/ of a Switchboard checkout) was not found: pass --sdk PATH",
        )?,
        _ => PathBuf::new(),
    };
    let mut written = Vec::new();
    for (path, text) in files(lang) {
        let text = text
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{sdk}}", &sdk.display().to_string());
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().expect("a file has a parent"))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
        written.push(file);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_a_full_directory_is_refused() {
        for bad in ["", "My-Rule", "1rule", "rule_x", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let files = new_rule(dir.path(), "triage", Lang::Js, None).unwrap();
        assert!(files.iter().any(|f| f.ends_with("lib/switchboard.js")));
        let package = std::fs::read_to_string(dir.path().join("package.json")).unwrap();
        assert!(package.contains(r#""name": "triage""#), "{package}");
        let err = new_rule(dir.path(), "triage", Lang::Python, None).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
    }
}
