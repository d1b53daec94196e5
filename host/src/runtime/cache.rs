//! Precompiled artifacts on disk, keyed by the module's sha256 and the engine's compatibility
//! hash, so a restart (or a second service sharing the data directory) deserializes in
//! milliseconds instead of recompiling every tenant's rule with Cranelift.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Precompiled};

/// Loads an artifact that this binary compiled: written by [`ArtifactCache::put`], or just
/// produced by `Engine::precompile_component` here or in a compile worker of this binary.
pub(crate) fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: every caller passes bytes from `Engine::precompile_component` of this binary with
    // the engine settings of `engine` (in a worker process, the same settings but for the
    // allocation strategy, which artifacts do not depend on): the cache checks its file's
    // sha256 and engine tag first, and a worker's artifact comes straight from its stdout.
    // wasmtime additionally checks the header and the engine settings it records.
    #[allow(unsafe_code)]
    unsafe {
        Component::deserialize(engine, artifact)
    }
}

/// An on-disk cache of compiled components.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine_tag: String,
}

impl ArtifactCache {
    pub(crate) fn open(dir: &Path, engine: &Engine) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        Ok(ArtifactCache {
            dir: dir.to_owned(),
            engine_tag: format!("{:016x}", h.finish()),
        })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_tag))
    }

    /// The cached component for `sha256`, if a valid artifact is on disk.
    pub(crate) fn get(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path(sha256);
        let bytes = fs::read(&path).ok()?;
        let (body, digest) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
        if Sha256::digest(body).as_slice() != digest
            || Engine::detect_precompiled(body) != Some(Precompiled::Component)
        {
            tracing::warn!(path = %path.display(), "ignoring a corrupt cached artifact");
            return None;
        }
        // `body` was produced by `Engine::precompile_component` of an engine with the same
        // compatibility hash (it is in the file name), written by `put` below into the
        // service's own data directory, and its sha256 (written beside it) still matches, so
        // it is exactly the artifact this process family wrote.
        match deserialize(engine, body) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unusable cached artifact");
                None
            }
        }
    }

    /// Stores `artifact` (from `Engine::precompile_component`) atomically.
    pub(crate) fn put(&self, sha256: &str, artifact: &[u8]) -> io::Result<()> {
        let path = self.path(sha256);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut data = Vec::with_capacity(artifact.len() + 32);
        data.extend_from_slice(artifact);
        data.extend_from_slice(&Sha256::digest(artifact));
        fs::write(&tmp, &data)?;
        fs::rename(&tmp, &path)
    }

    /// Whether an artifact for `sha256` is on disk.
    pub(crate) fn contains(&self, sha256: &str) -> bool {
        self.path(sha256).exists()
    }
}
