//! Talking back to Webex: the API client ([`client`]), this server's
//! webhook registrations ([`registration`]), the room-title cache
//! ([`titles`]), and the upkeep `serve` runs at start and periodically.

pub mod client;
pub mod registration;
pub mod titles;

use std::time::Duration;

use client::{Client, Webhook};
use registration::{Action, Registration};
use titles::{TitleLookups, TitleSettings};

use crate::receiver::Name;
use crate::secret::Secret;
use crate::webhook::payload::Target;

/// How often `serve` rechecks its registrations by default.
pub const DEFAULT_RECHECK: Duration = Duration::from_secs(10 * 60);

/// What `serve` needs to talk to Webex.
#[derive(Debug, Clone)]
pub struct WebexSettings {
    /// `WEBEX_TOKEN`; without it nothing is ever sent to Webex.
    pub token: Option<Secret>,
    /// `WEBEX_API_URL`.
    pub api_url: String,
    /// `ROLLCALL_PUBLIC_URL`: the base URL Webex calls. With a token, the
    /// server registers `PUBLIC_URL/hooks/{target}` itself.
    pub public_url: Option<String>,
    /// The target (and rooms) the server registers for itself.
    pub target: Target,
    pub rooms: Vec<String>,
    pub recheck_every: Duration,
    pub titles: TitleSettings,
}

impl Default for WebexSettings {
    fn default() -> Self {
        Self {
            token: None,
            api_url: client::DEFAULT_API_URL.to_string(),
            public_url: None,
            target: "default".parse().expect("a valid target name"),
            rooms: Vec::new(),
            recheck_every: DEFAULT_RECHECK,
            titles: TitleSettings::default(),
        }
    }
}

/// The periodic work `serve` does against Webex: make sure its webhooks
/// exist and are active (when it knows its public URL and secret), warn
/// about disabled ones, and tell [`TitleLookups`] what the webhook list
/// says. Other receivers' webhooks are never touched.
#[derive(Debug)]
pub struct Upkeep {
    client: Client,
    receiver: Name,
    registration: Option<Registration>,
    secret: Option<Secret>,
    public_url: Option<String>,
    titles: TitleLookups,
}

impl Upkeep {
    pub fn new(
        client: Client,
        settings: &WebexSettings,
        receiver: &Name,
        secret: Option<Secret>,
        titles: TitleLookups,
    ) -> Self {
        let registration = settings.public_url.as_ref().map(|public_url| Registration {
            receiver: receiver.clone(),
            public_url: public_url.clone(),
            target: settings.target.clone(),
            rooms: settings.rooms.clone(),
        });
        Self {
            client,
            receiver: receiver.clone(),
            registration,
            secret,
            public_url: settings.public_url.clone(),
            titles,
        }
    }

    /// One round. Failures are logged, never fatal: the log keeps being
    /// written, and the next round tries again.
    pub async fn check(&self) {
        let webhooks = match (&self.registration, &self.secret) {
            (Some(registration), Some(secret)) => match self.ensure(registration, secret).await {
                Ok(ensured) => {
                    for (action, webhook) in &ensured.actions {
                        // A re-activation was already logged loudly as it happened.
                        if !matches!(action, Action::Kept | Action::Reactivated) {
                            tracing::info!(
                                action = action.label(),
                                name = %webhook.name,
                                target_url = %webhook.target_url,
                                "Webex webhook"
                            );
                        }
                    }
                    ensured.webhooks
                }
                Err(error) => {
                    tracing::error!(
                        url = %registration.target_url(),
                        error = %format!("{:#}", anyhow::Error::new(error)),
                        "could not make sure the Webex webhooks exist; trying again at the next recheck"
                    );
                    return;
                }
            },
            _ => match self.client.list_webhooks().await {
                Ok(webhooks) => {
                    self.warn_inactive(&webhooks);
                    webhooks
                }
                Err(error) => {
                    tracing::warn!(
                        error = %format!("{:#}", anyhow::Error::new(error)),
                        "could not list the Webex webhooks; trying again at the next recheck"
                    );
                    return;
                }
            },
        };
        self.titles
            .learn_from_webhooks(&webhooks, self.public_url.as_deref());
    }

    /// The registration, then any other disabled webhook of ours.
    async fn ensure(
        &self,
        registration: &Registration,
        secret: &Secret,
    ) -> Result<registration::Ensured, client::ApiError> {
        let mut ensured = registration::ensure(&self.client, registration, secret).await?;
        for webhook in registration::reactivate_inactive(
            &self.client,
            &mut ensured.webhooks,
            &registration.receiver,
            &registration.public_url,
            secret,
        )
        .await?
        {
            ensured.actions.push((Action::Reactivated, webhook));
        }
        Ok(ensured)
    }

    /// Rechecks every `every` until the task is dropped.
    pub async fn run(self, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            self.check().await;
        }
    }

    /// Without a public URL the server cannot tell its own webhooks for
    /// sure, so it only says which disabled ones look like its own.
    fn warn_inactive(&self, webhooks: &[Webhook]) {
        for webhook in webhooks.iter().filter(|w| !w.is_active()) {
            if registration::is_ours(webhook, &self.receiver, self.public_url.as_deref()).is_some()
            {
                tracing::error!(
                    name = %webhook.name,
                    target_url = %webhook.target_url,
                    status = webhook.status.as_deref().unwrap_or(""),
                    "a Webex webhook pointing at this server is disabled: deliveries are being lost; run `rollcall subscribe` (or set ROLLCALL_PUBLIC_URL) to re-activate it"
                );
            }
        }
    }
}
