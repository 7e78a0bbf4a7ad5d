//! `rollcall webhooks`: the token's webhooks with their status, marking
//! this receiver's: those that point at its targets and are named for it
//! (or for no receiver).

use std::process::ExitCode;

use anyhow::Context;

use super::args::{ApiArgs, ReceiverArgs, parse_public_url};
use crate::cli::Global;
use crate::webex::registration::is_ours;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// This server's public base URL. Without it, any webhook whose URL
    /// path is /hooks/NAME counts as this server's.
    #[arg(long, env = "ROLLCALL_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub receiver: ReceiverArgs,
    #[command(flatten)]
    pub api: ApiArgs,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let name = args.receiver.resolve(global.dir()?)?;
    let client = args.api.client()?;
    let runtime = super::runtime()?;
    let webhooks = runtime
        .block_on(client.list_webhooks())
        .context("listing the Webex webhooks")?;
    let mut rows = vec![[
        String::new(),
        "STATUS".to_string(),
        "RESOURCE/EVENT".to_string(),
        "FILTER".to_string(),
        "TARGET".to_string(),
        "NAME".to_string(),
        "TARGET URL".to_string(),
    ]];
    let mut ours = 0;
    for webhook in &webhooks {
        let target = is_ours(webhook, &name, args.public_url.as_deref());
        ours += usize::from(target.is_some());
        rows.push([
            if target.is_some() { "*" } else { "" }.to_string(),
            webhook.status.clone().unwrap_or_else(|| "active".into()),
            format!("{}/{}", webhook.resource, webhook.event),
            webhook.filter.clone().unwrap_or_else(|| "-".into()),
            target.map_or_else(|| "-".into(), |t| t.to_string()),
            webhook.name.clone(),
            webhook.target_url.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    println!(
        "{} webhooks, {ours} pointing at this server (*) of receiver {name}",
        webhooks.len()
    );
    Ok(ExitCode::SUCCESS)
}
