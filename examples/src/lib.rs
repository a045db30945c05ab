//! Shared code of the runtrace example programs: an embedded OTLP/HTTP receiver
//! with fault injection, and the simulated inference request the programs trace.

pub mod receiver;
pub mod workload;
