//! Benchmarks of runtrace against its peers; see `benches/` (run with `cargo bench -p runtrace-benches`).
