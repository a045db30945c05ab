//! Environment configuration (being written).
