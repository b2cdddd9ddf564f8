//! A deterministic simulator of mesh networks (in progress).
