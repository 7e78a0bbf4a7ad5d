//! The Webex REST API client.
