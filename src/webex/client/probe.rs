//! One-item looks at a list, for `doctor`: whether the token may read it,
//! its first item, and the time the API says it answered (its `Date`
//! header), bracketed by our own clock before and after.

use std::time::SystemTime;

use reqwest::Method;
use reqwest::header::DATE;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::{ApiError, Client, Items, Room, compliance_refusal, decode};

/// What one probe found.
#[derive(Debug, Clone)]
pub struct Probe<T> {
    pub first: Option<T>,
    /// The API's `Date` header, if it sent a readable one.
    pub date: Option<SystemTime>,
    /// Our clock as the request went out and as the answer came in.
    pub sent: SystemTime,
    pub received: SystemTime,
}

impl Client {
    /// `GET /rooms?max=1`: needs `spark:rooms_read`.
    pub async fn probe_rooms(&self) -> Result<Probe<Room>, ApiError> {
        self.probe(&["rooms"], &[], "/rooms").await
    }

    /// `GET /memberships?roomId=&max=1`: needs `spark:memberships_read`.
    pub async fn probe_memberships(&self, room_id: &str) -> Result<Probe<IgnoredAny>, ApiError> {
        self.probe(&["memberships"], &[("roomId", room_id)], "/memberships")
            .await
    }

    /// `GET /events?resource=memberships&max=1`: only a compliance
    /// officer's token may ([`ApiError::NotComplianceOfficer`] otherwise).
    pub async fn probe_membership_events(&self) -> Result<Probe<IgnoredAny>, ApiError> {
        self.probe(&["events"], &[("resource", "memberships")], "/events")
            .await
            .map_err(compliance_refusal)
    }

    async fn probe<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        path: &str,
    ) -> Result<Probe<T>, ApiError> {
        let mut url = self.endpoint(segments);
        url.query_pairs_mut()
            .append_pair("max", "1")
            .extend_pairs(query);
        let sent = SystemTime::now();
        let response = self.send(Method::GET, &url, None).await?;
        let received = SystemTime::now();
        let date = response
            .headers()
            .get(DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        let items: Items<T> = decode(response, path).await?;
        Ok(Probe {
            first: items.items.into_iter().next(),
            date,
            sent,
            received,
        })
    }
}
