//! The audit log on disk: the record format and hash chain ([`record`]),
//! the chain's one rule ([`chain`]), where each day lives ([`days`]), the
//! durable-head witness ([`head`]), each membership's state ([`members`]),
//! several receivers' logs read as one record ([`merge`]),
//! the single durable writer
//! ([`writer`]), the one reader that export, tail and verify share
//! ([`reader`]), closed days' gzip archives and their chained digests
//! ([`archive`]), what `verify` checks ([`verify`]) and the one [`fault`]
//! it reports, and the file-system steps they share ([`files`]).

pub mod access;
pub mod archive;
pub mod chain;
pub mod days;
pub mod fault;
pub mod files;
pub mod head;
pub mod members;
pub mod merge;
pub mod reader;
pub mod record;
pub mod roster;
pub mod verify;
pub mod writer;
