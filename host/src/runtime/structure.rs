//! Structural limits, checked on the raw bytes before a byte is compiled. Compilation cost is
//! not proportional to module size: a few kilobytes of nested component instantiations expand,
//! when wasmtime inlines the component graph, into millions of core instances and trampolines,
//! and one function with tens of thousands of locals and as many branches makes Cranelift's
//! SSA construction and register allocation quadratic. One linear pass with `wasmparser`
//! measures what the compiler and the instance pool would have to handle, so such modules are
//! refused in milliseconds with the limit named, instead of after seconds and gigabytes.
//!
//! The component's *expansion* is counted: a nested component instantiated twice costs twice
//! its own instances, memories, tables and canonical functions, so the count is what one
//! instantiation of the rule really allocates from the pool.

use wasmparser::{
    ComponentAlias, ComponentExternalKind, ComponentInstance, ComponentOuterAliasKind,
    ComponentTypeRef, Instance, Operator, Parser, Payload,
};

use super::error::LoadError;

/// The structural limits a component must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StructureLimits {
    /// Core instances one instantiation creates, over the whole component expansion.
    pub core_instances: u64,
    /// Linear memories one instantiation defines.
    pub memories: u64,
    /// Tables one instantiation defines.
    pub tables: u64,
    /// Canonical functions and component instances one instantiation creates: each is a
    /// trampoline or a copy of the nested component's definitions for the compiler.
    pub component_items: u64,
    /// Functions defined by one core module.
    pub functions: u64,
    /// Bytes of one function body.
    pub function_bytes: u64,
    /// Locals of one function.
    pub locals: u64,
    /// Nesting depth of blocks, loops and ifs in one function.
    pub nesting: u64,
    /// One function's locals times its branches: the size of the SSA problem the compiler
    /// solves for it (each branch target may need a block parameter per live local).
    pub locals_times_branches: u64,
}

impl StructureLimits {
    /// The limits every rule is held to. They leave ordinary toolchain output (Rust through
    /// `wit-bindgen`, a few core instances and small functions) an order of magnitude of room.
    pub const DEFAULT: StructureLimits = StructureLimits {
        core_instances: 32,
        memories: 2,
        tables: 8,
        component_items: 10_000,
        functions: 200_000,
        function_bytes: 4 << 20,
        locals: 20_000,
        nesting: 2_000,
        locals_times_branches: 4_000_000,
    };
}

/// What one instantiation of a component (or core module) allocates.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expansion {
    /// Core instances.
    pub core_instances: u64,
    /// Linear memories defined (imported ones are shared, not new).
    pub memories: u64,
    /// Tables defined.
    pub tables: u64,
    /// Canonical functions and component instances.
    pub component_items: u64,
}

impl Expansion {
    fn add(&mut self, other: Expansion) {
        self.core_instances = self.core_instances.saturating_add(other.core_instances);
        self.memories = self.memories.saturating_add(other.memories);
        self.tables = self.tables.saturating_add(other.tables);
        self.component_items = self.component_items.saturating_add(other.component_items);
    }
}

/// One module or component being read; nested ones push a frame.
enum Frame {
    Module {
        own: Expansion,
    },
    Component {
        /// Cost of instantiating each entry of the core module index space (`None`: imported or
        /// taken from an instance, so unknown).
        modules: Vec<Option<Expansion>>,
        /// The same for the component index space.
        components: Vec<Option<Expansion>>,
        own: Expansion,
    },
}

fn over(what: &'static str, value: u64, limit: u64) -> Result<(), LoadError> {
    if value > limit {
        return Err(LoadError::TooComplex { what, value, limit });
    }
    Ok(())
}

fn malformed(e: wasmparser::BinaryReaderError) -> LoadError {
    LoadError::Invalid(format!("malformed module: {e}"))
}

/// Checks one function body against the per-function limits.
fn check_function(
    body: &wasmparser::FunctionBody<'_>,
    l: &StructureLimits,
) -> Result<(), LoadError> {
    over(
        "function_bytes",
        body.range().len() as u64,
        l.function_bytes,
    )?;
    let mut locals = 0u64;
    for entry in body.get_locals_reader().map_err(malformed)? {
        let (count, _) = entry.map_err(malformed)?;
        locals = locals.saturating_add(u64::from(count));
        over("locals", locals, l.locals)?;
    }
    let (mut depth, mut branches) = (0u64, 0u64);
    let mut ops = body.get_operators_reader().map_err(malformed)?;
    while !ops.eof() {
        match ops.read().map_err(malformed)? {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::TryTable { .. }
            | Operator::Try { .. } => {
                depth += 1;
                branches += 1;
                over("nesting", depth, l.nesting)?;
            }
            Operator::End => depth = depth.saturating_sub(1),
            Operator::Br { .. } | Operator::BrIf { .. } | Operator::Else => branches += 1,
            Operator::BrTable { targets } => {
                branches = branches.saturating_add(u64::from(targets.len()) + 1);
            }
            _ => {}
        }
    }
    over(
        "locals_times_branches",
        locals.saturating_mul(branches),
        l.locals_times_branches,
    )
}

/// Measures `bytes` (a component) against `limits`, returning its expansion.
pub fn check(bytes: &[u8], limits: &StructureLimits) -> Result<Expansion, LoadError> {
    let mut stack: Vec<Frame> = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(malformed)?;
        match payload {
            Payload::Version { encoding, .. } => stack.push(match encoding {
                wasmparser::Encoding::Module => Frame::Module {
                    own: Expansion {
                        core_instances: 1,
                        ..Expansion::default()
                    },
                },
                wasmparser::Encoding::Component => Frame::Component {
                    modules: Vec::new(),
                    components: Vec::new(),
                    own: Expansion::default(),
                },
            }),
            Payload::End(_) => {
                let frame = stack
                    .pop()
                    .ok_or_else(|| LoadError::Invalid("malformed module: unbalanced end".into()))?;
                let (own, is_module) = match frame {
                    Frame::Module { own } => (own, true),
                    Frame::Component { own, .. } => (own, false),
                };
                match stack.last_mut() {
                    Some(Frame::Component {
                        modules,
                        components,
                        ..
                    }) => {
                        if is_module {
                            modules.push(Some(own));
                        } else {
                            components.push(Some(own));
                        }
                    }
                    Some(Frame::Module { .. }) => {
                        return Err(LoadError::Invalid(
                            "malformed module: a core module cannot nest".into(),
                        ));
                    }
                    None => return check_expansion(own, limits),
                }
            }
            payload => visit(payload, &mut stack, limits)?,
        }
    }
    Err(LoadError::Invalid("malformed module: it ends early".into()))
}

fn check_expansion(e: Expansion, l: &StructureLimits) -> Result<Expansion, LoadError> {
    over("core_instances", e.core_instances, l.core_instances)?;
    over("memories", e.memories, l.memories)?;
    over("tables", e.tables, l.tables)?;
    over("component_items", e.component_items, l.component_items)?;
    Ok(e)
}

fn unknown_origin(what: &str) -> LoadError {
    LoadError::NotARule(format!(
        "it instantiates a {what} that it imports or takes from an instance; a rule must define \
         every module and component it instantiates"
    ))
}

fn visit(payload: Payload<'_>, stack: &mut [Frame], l: &StructureLimits) -> Result<(), LoadError> {
    if let Payload::ComponentAliasSection(s) = payload {
        for alias in s {
            alias_into(alias.map_err(malformed)?, stack);
        }
        return Ok(());
    }
    let Some(frame) = stack.last_mut() else {
        return Ok(());
    };
    match (frame, payload) {
        (Frame::Module { own, .. }, Payload::MemorySection(s)) => {
            own.memories = own.memories.saturating_add(u64::from(s.count()));
        }
        (Frame::Module { own, .. }, Payload::TableSection(s)) => {
            own.tables = own.tables.saturating_add(u64::from(s.count()));
        }
        (Frame::Module { .. }, Payload::FunctionSection(s)) => {
            over("functions", u64::from(s.count()), l.functions)?;
        }
        (Frame::Module { .. }, Payload::CodeSectionEntry(body)) => check_function(&body, l)?,
        (Frame::Component { modules, own, .. }, Payload::InstanceSection(s)) => {
            for instance in s {
                if let Instance::Instantiate { module_index, .. } = instance.map_err(malformed)? {
                    let cost = modules
                        .get(module_index as usize)
                        .copied()
                        .flatten()
                        .ok_or_else(|| unknown_origin("core module"))?;
                    own.add(cost);
                }
            }
            check_expansion(*own, l)?;
        }
        (
            Frame::Component {
                components, own, ..
            },
            Payload::ComponentInstanceSection(s),
        ) => {
            for instance in s {
                if let ComponentInstance::Instantiate {
                    component_index, ..
                } = instance.map_err(malformed)?
                {
                    let cost = components
                        .get(component_index as usize)
                        .copied()
                        .flatten()
                        .ok_or_else(|| unknown_origin("component"))?;
                    own.add(cost);
                    own.component_items = own.component_items.saturating_add(1);
                }
            }
            check_expansion(*own, l)?;
        }
        (Frame::Component { own, .. }, Payload::ComponentCanonicalSection(s)) => {
            own.component_items = own.component_items.saturating_add(u64::from(s.count()));
            check_expansion(*own, l)?;
        }
        (
            Frame::Component {
                modules,
                components,
                ..
            },
            Payload::ComponentImportSection(s),
        ) => {
            for import in s {
                match import.map_err(malformed)?.ty {
                    ComponentTypeRef::Module(_) => modules.push(None),
                    ComponentTypeRef::Component(_) => components.push(None),
                    _ => {}
                }
            }
        }
        (
            Frame::Component {
                modules,
                components,
                ..
            },
            Payload::ComponentExportSection(s),
        ) => {
            // An export adds the exported item to its index space again.
            for export in s {
                let export = export.map_err(malformed)?;
                let i = export.index as usize;
                match export.kind {
                    ComponentExternalKind::Module => {
                        modules.push(modules.get(i).copied().flatten());
                    }
                    ComponentExternalKind::Component => {
                        components.push(components.get(i).copied().flatten());
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Adds what an alias brings into the module or component index space. An outer alias
/// copies the outer entry's cost; an alias of an instance's export has no known cost.
fn alias_into(alias: ComponentAlias<'_>, stack: &mut [Frame]) {
    let outer = |count: u32, index: u32, module: bool| -> Option<Expansion> {
        let at = stack.len().checked_sub(1 + count as usize)?;
        match &stack[at] {
            Frame::Component {
                modules,
                components,
                ..
            } => {
                let space = if module { modules } else { components };
                space.get(index as usize).copied().flatten()
            }
            Frame::Module { .. } => None,
        }
    };
    let entry = match alias {
        ComponentAlias::InstanceExport { kind, .. } => match kind {
            ComponentExternalKind::Module => Some((true, None)),
            ComponentExternalKind::Component => Some((false, None)),
            _ => None,
        },
        ComponentAlias::Outer { kind, count, index } => match kind {
            ComponentOuterAliasKind::CoreModule => Some((true, outer(count, index, true))),
            ComponentOuterAliasKind::Component => Some((false, outer(count, index, false))),
            _ => None,
        },
        ComponentAlias::CoreInstanceExport { .. } => None,
    };
    if let (
        Some((module, cost)),
        Some(Frame::Component {
            modules,
            components,
            ..
        }),
    ) = (entry, stack.last_mut())
    {
        if module {
            modules.push(cost);
        } else {
            components.push(cost);
        }
    }
}
