//! A fake Webex API for the tests.
