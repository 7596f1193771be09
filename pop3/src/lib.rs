//! Placeholder; see docs/ARCHITECTURE.md.
