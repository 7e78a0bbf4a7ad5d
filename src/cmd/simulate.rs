//! `rollcall simulate`: posts signed, realistic membership deliveries to a
//! running server (joins, a few leaves and rejoins, moderators granted and
//! revoked, across several rooms), so a new user sees records appear
//! without a Webex account.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::cli::Global;
use crate::log::record::format_timestamp;
use crate::secret;
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
    /// Base URL of the running server.
    #[arg(long, env = "ROLLCALL_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Webhook target to post to (`URL/hooks/TARGET`).
    #[arg(long, env = "ROLLCALL_TARGET", default_value = "default")]
    pub target: String,
    /// How many deliveries to post.
    #[arg(long, env = "ROLLCALL_COUNT", default_value_t = 20)]
    pub count: u32,
    /// How many rooms the people join.
    #[arg(long, env = "ROLLCALL_ROOMS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rooms: u32,
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
    // Never make a secret here: one the server does not know only earns 401s.
    let dir = global.dir()?;
    let (secret, _) = secret::existing_secret(dir, secret::from_env())?.ok_or_else(|| {
        anyhow::anyhow!(
            "no webhook secret: neither ROLLCALL_SECRET nor {} exists; start `rollcall serve` first (it makes one), or give simulate the server's --dir or ROLLCALL_SECRET",
            dir.join(secret::SECRET_FILE).display()
        )
    })?;
    let url = format!("{}/hooks/{}", args.url.trim_end_matches('/'), args.target);
    let mut run_tag = [0u8; 4];
    getrandom::fill(&mut run_tag).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let run_tag = hex::encode(run_tag);
    let runtime = super::runtime()?;
    let client = reqwest::Client::new();
    let mut members: Vec<Member> = Vec::new();
    let (mut recorded, mut other, mut refused) = (0u32, 0u32, 0u32);
    for i in 0..args.count {
        let (index, change) = next_event(&mut members, i, args.rooms);
        let member = &members[index];
        let (name, user) = PEOPLE[member.person];
        let body = delivery(&run_tag, member, change, i);
        let body = serde_json::to_vec(&body)?;
        let sig = signature::sign(&secret, &body);
        let answer = runtime.block_on(async {
            let response = client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-spark-signature", sig)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        });
        let (status, text) = answer
            .with_context(|| format!("posting to {url}: is `rollcall serve` running there?"))?;
        let verb = match change {
            Change::Created => "joined",
            Change::Deleted => "left  ",
            Change::Updated if member.moderator => "made moderator",
            Change::Updated => "no longer moderator",
        };
        println!(
            "{verb} {name} <{user}@example.com> room {}: {status} {text}",
            member.room + 1
        );
        if status.is_success() && text.contains("\"recorded\"") {
            recorded += 1;
        } else {
            other += 1;
            refused += u32::from(status == reqwest::StatusCode::UNAUTHORIZED);
        }
    }
    println!(
        "{} deliveries posted to {url}: {recorded} recorded, {other} not",
        args.count
    );
    if refused > 0 {
        eprintln!(
            "rollcall: the server refused {refused} signatures: run simulate with the server's --dir (its .secret) or the same ROLLCALL_SECRET"
        );
    }
    Ok(if other == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
