//! Shared code of the runtrace example programs.
