//! `rollcall simulate`: posts signed, realistic membership deliveries to a
//! running server (joins, a few leaves and rejoins, moderators granted and
//! revoked, across several rooms), so a new user sees records appear
//! without a Webex account; or to several servers, each delivery to each
//! (as Webex delivers to each receiver's webhooks), a share of them
//! dropped on the way to receiver a or b, to watch receivers merge.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::cli::Global;
use crate::log::record::format_timestamp;
use crate::secret::{self, Secret};
use crate::webhook::signature;

const PEOPLE: [(&str, &str); 12] = [
    ("Ana Silva", "ana.silva"),
    ("Bilal Haddad", "bilal.haddad"),
    ("Chen Wei", "chen.wei"),
    ("Dagny Olsen", "dagny.olsen"),
    ("Emeka Obi", "emeka.obi"),
    ("Fatima Zahra", "fatima.zahra"),
    ("Gustavo Reyes", "gustavo.reyes"),
    ("Hana Sato", "hana.sato"),
    ("Ivan Petrov", "ivan.petrov"),
    ("Julia Novak", "julia.novak"),
    ("Kofi Mensah", "kofi.mensah"),
    ("Lea Dubois", "lea.dubois"),
];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Base URL of the running server. Repeat it to post each delivery
    /// to several servers, receivers a, b, ... in the order given, each
    /// signed with its own secret (give --dir once per --url, in the same
    /// order, or one ROLLCALL_SECRET for all).
    #[arg(
        long = "url",
        env = "ROLLCALL_URL",
        default_value = "http://127.0.0.1:8080",
        value_delimiter = ','
    )]
    pub urls: Vec<String>,
    /// Webhook target to post to (`URL/hooks/TARGET`).
    #[arg(long, env = "ROLLCALL_TARGET", default_value = "default")]
    pub target: String,
    /// How many deliveries to post.
    #[arg(long, env = "ROLLCALL_COUNT", default_value_t = 20)]
    pub count: u32,
    /// How many rooms the people join.
    #[arg(long, env = "ROLLCALL_ROOMS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rooms: u32,
    /// The share of deliveries (0 to 1) not posted to the first --url,
    /// receiver a: as if it were down or its webhook lost them.
    #[arg(long, value_name = "RATE", env = "ROLLCALL_DROP_A", default_value_t = 0.0, value_parser = parse_rate)]
    pub drop_a: f64,
    /// The same for the second --url, receiver b.
    #[arg(long, value_name = "RATE", env = "ROLLCALL_DROP_B", default_value_t = 0.0, value_parser = parse_rate)]
    pub drop_b: f64,
    /// Which deliveries are dropped: the same seed (and --count) drops
    /// the same ones. Default: one drawn for the run, and printed.
    #[arg(long, value_name = "N", env = "ROLLCALL_SEED")]
    pub seed: Option<u64>,
}

/// A share of deliveries: 0 to 1.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a share of deliveries: give a number from 0 to 1, e.g. 0.25"
        )),
    }
}

/// One server simulate posts to: receiver a, b, ... by its place.
struct Server {
    label: char,
    url: String,
    secret: Secret,
    /// Whether each delivery, by its number, is not posted here.
    dropped: Vec<bool>,
    recorded: u32,
    other: u32,
    refused: u32,
}

/// One person's membership of one room during the run: at most one per
/// person and room, as Webex keeps it (a rejoin reuses it).
struct Member {
    room: u32,
    /// An index into [`PEOPLE`].
    person: usize,
    in_room: bool,
    moderator: bool,
}

/// What a delivery says happened, as Webex names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Created,
    Deleted,
    /// The moderator flag was switched.
    Updated,
}

impl Change {
    fn event(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Deleted => "deleted",
            Change::Updated => "updated",
        }
    }
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let secrets = secrets(global, args.urls.len())?;
    anyhow::ensure!(
        args.drop_b == 0.0 || args.urls.len() >= 2,
        "--drop-b is for the second --url (receiver b): give --url twice"
    );
    let mut run_tag = [0u8; 8];
    getrandom::fill(&mut run_tag).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let seed = args.seed.unwrap_or_else(|| u64::from_le_bytes(run_tag));
    let run_tag = hex::encode(&run_tag[..4]);
    let several = args.urls.len() > 1;
    let rates = [args.drop_a, args.drop_b];
    let drops = dropped(&rates[..args.urls.len().min(2)], args.count, seed);
    let mut receivers: Vec<Server> = args
        .urls
        .iter()
        .zip(secrets)
        .enumerate()
        .map(|(i, (url, secret))| Server {
            label: char::from(b'a' + i as u8),
            url: format!("{}/hooks/{}", url.trim_end_matches('/'), args.target),
            secret,
            dropped: drops
                .get(i)
                .cloned()
                .unwrap_or_else(|| vec![false; args.count as usize]),
            recorded: 0,
            other: 0,
            refused: 0,
        })
        .collect();
    if several {
        for receiver in &receivers {
            println!("receiver {}: {}", receiver.label, receiver.url);
        }
    }
    if rates.iter().any(|&rate| rate > 0.0) {
        println!("dropping deliveries with --seed {seed}");
    }
    let runtime = super::runtime()?;
    let client = reqwest::Client::new();
    let mut members: Vec<Member> = Vec::new();
    for i in 0..args.count {
        let (index, change) = next_event(&mut members, i, args.rooms);
        let member = &members[index];
        let (name, user) = PEOPLE[member.person];
        let body = serde_json::to_vec(&delivery(&run_tag, member, change, i))?;
        let mut answers = Vec::new();
        for receiver in &mut receivers {
            let label = if several {
                format!("{}: ", receiver.label)
            } else {
                String::new()
            };
            if receiver.dropped[i as usize] {
                answers.push(format!("{label}dropped"));
                continue;
            }
            let (status, text) = runtime
                .block_on(post(&client, &receiver.url, &receiver.secret, &body))
                .with_context(|| {
                    format!(
                        "posting to {}: is `rollcall serve` running there?",
                        receiver.url
                    )
                })?;
            if status.is_success() && text.contains("\"recorded\"") {
                receiver.recorded += 1;
            } else {
                receiver.other += 1;
                receiver.refused += u32::from(status == reqwest::StatusCode::UNAUTHORIZED);
            }
            answers.push(format!("{label}{status} {text}"));
        }
        let verb = match change {
            Change::Created => "joined",
            Change::Deleted => "left  ",
            Change::Updated if member.moderator => "made moderator",
            Change::Updated => "no longer moderator",
        };
        println!(
            "{verb} {name} <{user}@example.com> room {}: {}",
            member.room + 1,
            answers.join("; ")
        );
    }
    let mut failed = false;
    for receiver in &receivers {
        let posted = receiver.recorded + receiver.other;
        let who = if several {
            format!("receiver {}: ", receiver.label)
        } else {
            String::new()
        };
        println!(
            "{who}{posted} deliveries posted to {}, {} dropped: {} recorded, {} not",
            receiver.url,
            args.count - posted,
            receiver.recorded,
            receiver.other
        );
        if receiver.refused > 0 {
            eprintln!(
                "rollcall: {} refused {} signatures: run simulate with that server's --dir (its .secret) or the same ROLLCALL_SECRET",
                receiver.url, receiver.refused
            );
        }
        failed |= receiver.other > 0;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Each server's secret, in the order of the URLs: `ROLLCALL_SECRET` for
/// all, else each `--dir`'s, paired in order. Never made here: one the
/// server does not know only earns 401s.
fn secrets(global: &Global, servers: usize) -> anyhow::Result<Vec<Secret>> {
    if let Some(secret) = secret::from_env() {
        return Ok(vec![secret; servers]);
    }
    anyhow::ensure!(
        global.dirs.len() == servers,
        "{servers} --url and {} --dir: give --dir once per --url, in the same order (each server's directory, for its .secret), or one ROLLCALL_SECRET for all",
        global.dirs.len()
    );
    global
        .dirs
        .iter()
        .map(|dir| {
            let (secret, _) = secret::existing_secret(dir, None)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "no webhook secret: neither ROLLCALL_SECRET nor {} exists; start `rollcall serve` first (it makes one), or give simulate the server's --dir or ROLLCALL_SECRET",
                    dir.join(secret::SECRET_FILE).display()
                )
            })?;
            Ok(secret)
        })
        .collect()
}

/// For each drop rate, which deliveries (by number) are not posted:
/// exactly `rate * count` of them (rounded), chosen by a generator seeded
/// with `seed`, each receiver's on its own.
fn dropped(rates: &[f64], count: u32, seed: u64) -> Vec<Vec<bool>> {
    let mut draw = fastrand::Rng::with_seed(seed);
    rates
        .iter()
        .map(|rate| {
            let mut order: Vec<usize> = (0..count as usize).collect();
            draw.shuffle(&mut order);
            let mut dropped = vec![false; count as usize];
            let n = (rate * f64::from(count)).round() as usize;
            for &i in &order[..n.min(order.len())] {
                dropped[i] = true;
            }
            dropped
        })
        .collect()
}

/// Posts `body` to `url`, signed with `secret`: the answer's status and text.
async fn post(
    client: &reqwest::Client,
    url: &str,
    secret: &Secret,
    body: &[u8],
) -> Result<(reqwest::StatusCode, String), reqwest::Error> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-spark-signature", signature::sign(secret, body))
        .body(body.to_vec())
        .send()
        .await?;
    let status = response.status();
    Ok((status, response.text().await?))
}

/// Picks the next event: mostly new joins, every fourth a leave, every
/// sixth a rejoin of someone who left, and now and then a moderator
/// granted or revoked; once every person is in every room, a rejoin or a
/// leave instead of a join. Returns the member and what happened.
fn next_event(members: &mut Vec<Member>, i: u32, rooms: u32) -> (usize, Change) {
    let pick = |want_in: bool, members: &mut Vec<Member>| {
        let found = members.iter().position(|m| m.in_room == want_in)?;
        members[found].in_room = !want_in;
        Some((
            found,
            if want_in {
                Change::Deleted
            } else {
                Change::Created
            },
        ))
    };
    let chosen = match i % 12 {
        3 | 7 | 11 => pick(true, members),
        5 | 9 => pick(false, members),
        10 => members.iter().rposition(|m| m.in_room).map(|found| {
            members[found].moderator = !members[found].moderator;
            (found, Change::Updated)
        }),
        _ => None,
    };
    if let Some(chosen) = chosen {
        return chosen;
    }
    let n = members.len();
    let rooms = rooms as usize;
    // Slot `k` is person `k / rooms` in room `k % rooms`: every slot is a
    // different pair, and the first free one from `n` on is taken.
    let free = (n..n + rooms * PEOPLE.len())
        .map(|k| ((k % rooms) as u32, (k / rooms) % PEOPLE.len()))
        .find(|&(room, person)| !members.iter().any(|m| m.room == room && m.person == person));
    match free {
        Some((room, person)) => {
            members.push(Member {
                room,
                person,
                in_room: true,
                moderator: person.is_multiple_of(5),
            });
            (n, Change::Created)
        }
        None => pick(false, members)
            .or_else(|| pick(true, members))
            .expect("every membership is either in or out of its room"),
    }
}

fn delivery(run_tag: &str, member: &Member, change: Change, i: u32) -> Value {
    let (name, user) = PEOPLE[member.person];
    let created =
        format_timestamp(OffsetDateTime::now_utc() + time::Duration::milliseconds(i.into()));
    let room_id = format!("sim-{run_tag}-room-{}", member.room + 1);
    json!({
        "id": format!("sim-{run_tag}-webhook-{}", change.event()),
        "name": "rollcall simulate",
        "resource": "memberships",
        "event": change.event(),
        "filter": format!("roomId={room_id}"),
        "orgId": "sim-org",
        "createdBy": "sim-admin",
        "ownedBy": "creator",
        "status": "active",
        "actorId": "sim-admin",
        "data": {
            "id": format!("sim-{run_tag}-membership-{}-{}", member.room + 1, member.person),
            "roomId": room_id,
            "roomType": "group",
            "personId": format!("sim-person-{}", member.person),
            "personEmail": format!("{user}@example.com"),
            "personDisplayName": name,
            "personOrgId": "sim-org",
            "isModerator": member.moderator,
            "isMonitor": false,
            "isRoomHidden": false,
            "created": created,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::dropped;

    #[test]
    fn each_receiver_loses_exactly_its_share_and_a_seed_loses_the_same_ones() {
        let drops = dropped(&[0.25, 0.5], 20, 7);
        let count = |d: &Vec<bool>| d.iter().filter(|&&x| x).count();
        assert_eq!(drops.iter().map(count).collect::<Vec<_>>(), [5, 10]);
        assert_eq!(dropped(&[0.25, 0.5], 20, 7), drops);
        assert_ne!(dropped(&[0.25, 0.5], 20, 8), drops);
        assert_eq!(dropped(&[0.0, 1.0], 3, 1), [vec![false; 3], vec![true; 3]]);
    }
}
