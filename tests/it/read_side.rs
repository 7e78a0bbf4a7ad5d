//! Tests for read_side.
