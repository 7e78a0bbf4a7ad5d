//! Tests for archive.
