//! Room titles for records on targets that serve several rooms.

use crate::webhook::payload::Target;

/// Looks up room titles where the contract asks for them.
#[derive(Debug, Default)]
pub struct RoomTitles;

impl RoomTitles {
    /// The title to record for `room_id` delivered on `target`, or `None`.
    pub async fn title_for(
        &self,
        _target: &Target,
        _webhook_filter: Option<&str>,
        _room_id: &str,
    ) -> Option<String> {
        None
    }
}
