//! Integration tests: the real server on 127.0.0.1:0 and the real binary,
//! each test in its own temp directory.

#[path = "../support/mod.rs"]
mod support;

mod archive;
mod console;
mod console_browser;
mod coverage;
mod docs;
mod doctor;
mod faults;
mod history;
mod hostile;
mod index;
mod index_docs;
mod index_receivers;
mod index_serve;
mod ingest;
mod integrity_client;
mod integrity_serve;
mod integrity_verify;
mod listeners;
mod offsite;
mod property;
mod read_side;
mod receiver_bucket;
mod receiver_name;
mod receiver_webhooks;
mod receivers;
mod reconcile;
mod remote_reads;
mod role_changes;
mod roster;
mod siem;
mod simulate_two;
mod sql_in_place;
mod start_up;
mod systemd;
mod tls;
mod webex;
mod webex_api;
