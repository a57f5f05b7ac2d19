//! kvtrace
