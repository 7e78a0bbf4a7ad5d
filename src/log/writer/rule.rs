//! When the writer writes a record beyond never writing the same join or
//! leave twice: the one place that decides, given what the log holds
//! about the record's membership.

use super::known::MemberState;
use crate::log::record::{Record, Source};

/// When the writer writes a record, beyond never writing the same join
/// or leave twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Always (a webhook's join or leave, the receiver's own records).
    Always,
    /// A role change: only if the membership's moderator flag in the log
    /// differs from the one the record sets.
    RoleChange,
    /// A finding from comparing the log with a Webex listing that began
    /// when the log's last membership record was this seq
    /// ([`super::LogWriter::membership_seq`]): only if the membership has no
    /// record after it, so a delivery that came in during the listing is
    /// never overruled. It then corrects what the log holds, so it is
    /// never refused as a retry of an earlier record with its key (a
    /// rejoin after a leave has the first join's key).
    IfUnchangedSince(u64),
    /// An event from `GET /events` for a gap whose backfill failed on an
    /// earlier run, written late: only if the membership has no record
    /// after `gap_end` (the gap's last record) but this backfill's own
    /// (`GET /events` records after `replay_from`, the log's last
    /// membership record when it began), so an old leave or role change
    /// never overrides a newer delivery or listing. A join or leave
    /// already recorded is still a duplicate, and a role change is written
    /// only if it changes the flag.
    Replayed { gap_end: u64, replay_from: u64 },
}

impl Rule {
    /// Whether `record` is written, given what the log holds about its
    /// membership.
    pub(super) fn allows(self, record: &Record, member: Option<MemberState>) -> bool {
        let role_differs = || match record.event.moderator() {
            Some(flag) => member.is_none_or(|m| m.is_moderator() != Some(flag)),
            None => true,
        };
        match self {
            Rule::Always => true,
            Rule::RoleChange => role_differs(),
            Rule::IfUnchangedSince(seq) => {
                member.map_or(0, MemberState::last_seq) <= seq && role_differs()
            }
            Rule::Replayed {
                gap_end,
                replay_from,
            } => {
                let unchanged = member.is_none_or(|m| {
                    m.last_seq() <= gap_end
                        || (m.last_seq() > replay_from && m.last_source() == Source::EventsApi)
                });
                unchanged && role_differs()
            }
        }
    }
}
