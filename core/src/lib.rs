//! runtrace core (work in progress).
pub mod attribute;
pub mod context;
pub mod export;
pub mod id;
pub mod queue;
pub mod resource;
pub mod span;
pub mod trace_state;
