//! Helpers shared by the runtrace integration tests.

pub mod receiver;
