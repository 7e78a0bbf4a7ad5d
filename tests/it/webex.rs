//! Tests for webex.
