//! Helpers shared by the runtrace integration tests.
