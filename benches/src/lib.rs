//! Criterion benches live in `benches/benches/`; this library only anchors the package.
