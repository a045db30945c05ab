//! Benchmarks of runtrace against opentelemetry_sdk and fastrace (see benches/).
