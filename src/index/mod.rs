//! The SQLite index of who was where: derived from the log, never
//! evidence, rebuilt from it whenever it cannot be trusted. Of one
//! receiver's log it is `DIR/index.sqlite`; of several receivers' logs
//! read as one record (`--dir` more than once), `FIRSTDIR/merged.sqlite`
//! ([`MERGED_FILE`]), which names the receivers it holds.
//!
//! [`Index::open`] (one log) and [`Index::open_of`] (any receivers) are
//! the ways in: they open (or create) the file, check its schema version,
//! its receivers, and that the newest record it read of each is still
//! that log's record at that seq, and rebuild it otherwise, returning
//! why. [`Index::catch_up`] folds the logs' durable records past the
//! index's newest into it in batched transactions ([`build`]; several
//! receivers through the merge, [`merged`]); [`query`] answers rosters,
//! rooms and a person's history from it; [`check`] compares it with a
//! fresh fold of the logs; [`follow`] is `serve`'s thread that keeps it
//! current. The views in [`schema`] are public.

pub mod build;
pub mod check;
mod fold;
pub mod follow;
mod lines;
mod merged;
mod open;
pub mod pages;
pub mod query;
pub mod schema;
mod state;
mod statements;
mod text;

use std::io;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::log::reader::ReadError;
use crate::receiver::Receiver;

pub use build::CaughtUp;
pub use open::Opened;
pub use schema::Kind;

pub const INDEX_FILE: &str = "index.sqlite";
/// The index of several receivers, in the first one's directory.
pub const MERGED_FILE: &str = "merged.sqlite";

/// Why the index could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("the index database failed")]
    Sql(#[from] rusqlite::Error),
    #[error("reading the log for the index")]
    Read(#[from] ReadError),
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("reading the durable head: {0}")]
    Head(String),
    #[error("naming the receiver: {0}")]
    Receiver(String),
}

/// An open index of one receiver's log, or of several.
pub struct Index {
    conn: Connection,
    kind: Kind,
    /// The receivers it holds, by place.
    receivers: Vec<Receiver>,
    /// The directory it lives in.
    home: PathBuf,
    /// How many texts a generation of a catch-up's text cache holds.
    texts: usize,
    /// Records this connection folded in since it last refreshed the
    /// planner's statistics ([`Index::optimize`]).
    unanalyzed: u64,
}

/// The seq of the log's durable head (`DIR/.head`), `None` for a log
/// without one: how far the index may be caught up.
pub(crate) fn durable_seq(dir: &Path) -> Result<Option<u64>, IndexError> {
    crate::log::head::Head::read(dir)
        .map(|head| head.map(|h| h.seq))
        .map_err(|e| IndexError::Head(format!("{e:#}")))
}

/// `DIR/index.sqlite`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(INDEX_FILE)
}

/// `DIR/merged.sqlite`.
pub fn merged_path(dir: &Path) -> PathBuf {
    dir.join(MERGED_FILE)
}

impl Index {
    /// Its file.
    pub fn file(&self) -> PathBuf {
        match self.kind {
            Kind::Single => path(&self.home),
            Kind::Merged => merged_path(&self.home),
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The receivers it holds, by place.
    pub fn receivers(&self) -> &[Receiver] {
        &self.receivers
    }

    /// Lets this index's catch-ups keep `text::BUILD_GENERATION` texts
    /// a generation in memory instead of `text::SERVE_GENERATION`: for a
    /// command that may build a long log's index, where `serve`, which
    /// runs for years, keeps its memory small.
    pub fn for_a_build(mut self) -> Self {
        self.texts = text::BUILD_GENERATION;
        self
    }

    /// Refreshes the statistics SQLite plans queries with (`sqlite_stat1`)
    /// where the tables have grown since: without them it takes the
    /// 10,000 rooms for as many rows as the millions of texts, and reads
    /// a search's matching rooms along the index of every text (0.26 s,
    /// 5 ms with them, on a 1,000,000-record index). SQLite bounds the
    /// work it does for this (its own `analysis_limit`).
    pub fn optimize(&mut self) -> Result<(), IndexError> {
        self.conn.execute_batch("PRAGMA optimize=0x10002")?;
        self.unanalyzed = 0;
        Ok(())
    }

    /// The connection, for queries of its own (the console, tests).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The newest record the index holds: its seq and hash (0 and empty
    /// for an empty index); of several receivers, the first one's.
    pub fn position(&self) -> Result<(u64, String), IndexError> {
        let at = build::Position::read(&self.conn)?;
        Ok((at.seq, at.hash))
    }

    /// The newest record the index holds of each receiver, by place.
    pub fn positions(&self) -> Result<Vec<build::Position>, IndexError> {
        Ok(state::read(&self.conn)?.into_iter().map(|t| t.at).collect())
    }
}
