//! Generated logs for the read-side tests.
