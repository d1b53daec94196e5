//! Writes the project's hostile corpus as `.wasm` files into a directory, for load runs
//! against a real `switchboard serve` (`scripts/hostile-run`):
//! `cargo run -p switchboard-tests --example corpus -- DIR`.

use switchboard_tests::guest;
use switchboard_tests::wat::{
    many_instances, many_memories, nested_instantiation, slow_to_compile, wat_rule,
};

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .expect("usage: corpus DIR");
    std::fs::create_dir_all(&dir)?;
    let corpus: Vec<(&str, Vec<u8>)> = vec![
        ("nested-instantiation", nested_instantiation(20)),
        ("many-instances", many_instances(1023)),
        ("many-memories", many_memories(3)),
        ("slow-to-compile", slow_to_compile(5000, 5000)),
        ("slow-to-compile-2", slow_to_compile(5000, 5001)),
        ("spin", wat_rule(Some("spin"))),
        ("two-memories", wat_rule(Some("two-memories"))),
        ("huge-tags", wat_rule(Some("huge-tags"))),
        ("huge-log-line", wat_rule(Some("huge-log-line"))),
        ("hostile", guest("hostile")),
        ("vip-and-security", guest("vip-and-security")),
    ];
    for (name, bytes) in corpus {
        let path = dir.join(format!("{name}.wasm"));
        std::fs::write(&path, &bytes)?;
        println!("{} ({} bytes)", path.display(), bytes.len());
    }
    Ok(())
}
