//! What a component says about itself before it is compiled: the interfaces it imports and
//! the toolchain that built it. Both come from one cheap pass over its outermost sections, so
//! a forbidden import is refused and the right toolchain's limits are chosen before seconds
//! of compilation are spent.

use wasmparser::{KnownCustom, Parser, Payload};

use super::error::LoadError;
use crate::limits::Toolchain;

/// The outermost component's imports and toolchain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inspection {
    /// Import names, e.g. `wasi:io/streams@0.2.12`.
    pub(crate) imports: Vec<String>,
    /// Who built it.
    pub(crate) toolchain: Toolchain,
}

/// Reads `bytes`' imports and toolchain. componentize-js writes `language: JavaScript` and
/// `processed-by: ComponentizeJS` into the component's producers section; componentize-py
/// writes nothing there, but links CPython as a core module named `libpython3.*.so`.
pub(crate) fn inspect(bytes: &[u8]) -> Result<Inspection, LoadError> {
    let invalid = |e: wasmparser::BinaryReaderError| LoadError::Invalid(e.to_string());
    let mut imports = Vec::new();
    let mut toolchain = Toolchain::Native;
    // Nesting: 1 inside the outermost component, more inside the modules it embeds.
    let mut depth = 0u32;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(invalid)?;
                    // A type import (a world's `use`) grants nothing; every other import is
                    // a capability and must be allowed.
                    if !matches!(import.ty, wasmparser::ComponentTypeRef::Type(_)) {
                        imports.push(import.name.name.to_owned());
                    }
                }
            }
            Payload::CustomSection(custom) if depth == 1 => match custom.as_known() {
                KnownCustom::Producers(fields) => {
                    for field in fields.into_iter().flatten() {
                        let javascript = field.values.into_iter().flatten().any(|v| {
                            (field.name == "language" && v.name == "JavaScript")
                                || (field.name == "processed-by" && v.name == "ComponentizeJS")
                        });
                        if javascript {
                            toolchain = Toolchain::Javascript;
                        }
                    }
                }
                KnownCustom::ComponentName(names) => {
                    for name in names.into_iter().flatten() {
                        if let wasmparser::ComponentName::CoreModules(map) = name {
                            let python = map
                                .into_iter()
                                .flatten()
                                .any(|n| n.name.starts_with("libpython3"));
                            if python && toolchain == Toolchain::Native {
                                toolchain = Toolchain::Python;
                            }
                        }
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    Ok(Inspection { imports, toolchain })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers_and_module_names_tell_the_toolchain() {
        let plain =
            wat::parse_str(r#"(component (import "wasi:io/poll@0.2.3" (instance)))"#).unwrap();
        let i = inspect(&plain).unwrap();
        assert_eq!(i.imports, vec!["wasi:io/poll@0.2.3".to_owned()]);
        assert_eq!(i.toolchain, Toolchain::Native);
        let js = wat::parse_str(
            r#"(component (@producers (language "JavaScript" "") (processed-by "ComponentizeJS" "0.23.0")))"#,
        )
        .unwrap();
        assert_eq!(inspect(&js).unwrap().toolchain, Toolchain::Javascript);
        let py = wat::parse_str(r#"(component (core module $libpython3.14.so))"#).unwrap();
        assert_eq!(inspect(&py).unwrap().toolchain, Toolchain::Python);
        // A producers section inside an embedded module says nothing about the component.
        let nested =
            wat::parse_str(r#"(component (core module (@producers (language "JavaScript" ""))))"#)
                .unwrap();
        assert_eq!(inspect(&nested).unwrap().toolchain, Toolchain::Native);
    }
}
