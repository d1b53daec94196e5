//! Hostile components the SDK never emits: rules written as bare core modules in WAT
//! (`tests/guests/wat/`), wrapped into components with `wit-component` as any toolchain
//! would, and raw component text built to be expensive to compile or instantiate.

use std::fmt::Write as _;
use std::path::PathBuf;

use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::Resolve;

use crate::workspace_root;

fn wat_dir() -> PathBuf {
    workspace_root().join("tests/guests/wat")
}

/// Splices `variant`'s `;; @items` and `;; @route` sections into the base rule's markers.
fn splice(base: &str, variant: &str) -> String {
    let section = |marker: &str| -> String {
        let Some(start) = variant.find(marker) else {
            return String::new();
        };
        let rest = &variant[start + marker.len()..];
        let end = rest.find(";; @").unwrap_or(rest.len());
        rest[..end].to_owned()
    };
    base.replace(";; @items", &section(";; @items"))
        .replace(";; @route", &section(";; @route"))
}

/// A core module (WAT text) made into a rule component against contract 0.1.0.
pub fn componentize(core_wat: &str) -> Vec<u8> {
    let mut module = wat::parse_str(core_wat).unwrap_or_else(|e| panic!("bad WAT: {e}"));
    let mut resolve = Resolve::default();
    let (pkg, _) = resolve
        .push_dir(workspace_root().join("rules/wit/v0.1.0"))
        .expect("the contract's WIT parses");
    let world = resolve
        .select_world(&[pkg], Some("ticket-rules"))
        .expect("world ticket-rules");
    wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .expect("embed the WIT");
    ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|mut e| e.encode())
        .unwrap_or_else(|e| panic!("componentize: {e:#}"))
}

/// The text of the well-behaved base rule.
fn base_rule() -> String {
    std::fs::read_to_string(wat_dir().join("rule.wat")).expect("read rule.wat")
}

/// The base WAT rule with the variant `tests/guests/wat/{name}.wat` spliced in (`None`: the
/// well-behaved base), as a component.
pub fn wat_rule(name: Option<&str>) -> Vec<u8> {
    let base = base_rule();
    let text = match name {
        None => base,
        Some(name) => {
            let path = wat_dir().join(format!("{name}.wat"));
            let variant = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            splice(&base, &variant)
        }
    };
    componentize(&text)
}

/// The base rule with one extra function that is cheap to write and expensive to compile:
/// `locals` locals, and `blocks` blocks that each branch and write one local, so the SSA
/// problem the compiler solves grows with their product.
pub fn slow_to_compile(locals: usize, blocks: usize) -> Vec<u8> {
    let mut f = String::from("(func $slow (param i32) (result i32) (local");
    for _ in 0..locals {
        f.push_str(" i32");
    }
    f.push(')');
    for b in 0..blocks {
        let _ = write!(
            f,
            " (block (br_if 0 (local.get 0)) (local.set {} (i32.add (local.get {}) (local.get 0))))",
            1 + b % locals,
            1 + (b * 7) % locals
        );
    }
    f.push_str(" (local.get 1))");
    componentize(&base_rule().replace(";; @items", &f))
}

/// A component of `levels` nested components, each instantiating the one below twice, over a
/// component with one core instance: a few kilobytes that inline to `2^levels` core instances.
pub fn nested_instantiation(levels: usize) -> Vec<u8> {
    let mut c = String::from(
        "(component $root (component $c0 (core module $m (func (export \"f\"))) \
         (core instance (instantiate $m)))",
    );
    for l in 1..=levels {
        let _ = write!(
            c,
            " (component $c{l} (alias outer $root $c{} (component $below)) \
             (instance (instantiate $below)) (instance (instantiate $below)))",
            l - 1
        );
    }
    let _ = write!(c, " (instance (instantiate $c{levels})))");
    wat::parse_str(&c).expect("valid component text")
}

/// A component that instantiates one empty core module `n` times.
pub fn many_instances(n: usize) -> Vec<u8> {
    let mut c = String::from("(component (core module $empty)");
    for _ in 0..n {
        c.push_str(" (core instance (instantiate $empty))");
    }
    c.push(')');
    wat::parse_str(&c).expect("valid component text")
}

/// A component whose one core module defines `n` linear memories.
pub fn many_memories(n: usize) -> Vec<u8> {
    let mut c = String::from("(component (core module $m");
    for _ in 0..n {
        c.push_str(" (memory 1)");
    }
    c.push_str(") (core instance (instantiate $m)))");
    wat::parse_str(&c).expect("valid component text")
}

/// A component importing `name`, an interface no rule may import; it compiles, so only the
/// import check refuses it.
pub fn importing(name: &str) -> Vec<u8> {
    wat::parse_str(format!(r#"(component (import "{name}" (instance)))"#))
        .unwrap_or_else(|e| panic!("bad component text: {e}"))
}
