//! Receivers known only by their bucket prefix (`--remote
//! s3://BUCKET/PREFIX`, through the real binary and a moto bucket): an
//! officer's empty home builds the index from the bucket alone and
//! answers as the receivers' own logs do, a second read fetches nothing,
//! a receiver's own `--dir` is read instead of its mirror, two receivers
//! of one name in the bucket are refused, an archive that is not what
//! its digest says is refused by name with nothing of it kept, and a
//! mirror is never followed nor served.

use std::path::Path;

use crate::index_receivers::{Two, a_day_of_two};
use crate::offsite::closed_log;
use crate::support::bin::{Run, rollcall, run};
use crate::support::moto::Moto;

const PREFIX: &str = "sites";

/// `rollcall --dir HOME ARGS --remote s3://BUCKET/sites`, pointed at the
/// bucket's endpoint with its credentials.
fn remote(moto: &Moto, home: &Path, args: &[&str]) -> Run {
    let mut command = rollcall(home);
    command
        .args(args)
        .arg("--remote")
        .arg(format!("s3://{}/{PREFIX}", moto.bucket));
    moto.configure(&mut command, PREFIX);
    run(&mut command)
}

/// `rollcall archive` of `dir`, shipping to the bucket's shared prefix.
fn ship(moto: &Moto, dir: &Path) {
    let mut command = rollcall(dir);
    command.arg("archive");
    moto.configure(&mut command, PREFIX);
    run(&mut command).success();
}

/// Where a receiver's log in the bucket is, for messages.
fn location(moto: &Moto, name: &str) -> String {
    format!("s3://{}/{PREFIX}/{name}/", moto.bucket)
}

/// The warnings a read printed.
fn warnings(run: &Run) -> Vec<&str> {
    run.stderr
        .lines()
        .filter(|line| line.starts_with("warning:"))
        .collect()
}

/// Two receivers through a day (deliveries to both, to one only, a
/// restart of each and a gap of both), the day closed, archived and
/// shipped by each to its own folder of the prefix.
async fn two_shipped(moto: &Moto) -> Two {
    let mut two = a_day_of_two().await;
    two.a.close();
    two.b.close();
    ship(moto, &two.a.dir);
    ship(moto, &two.b.dir);
    two
}

#[tokio::test]
async fn an_index_built_from_the_bucket_alone_answers_as_the_receivers_own_logs_do() {
    let moto = Moto::start().await;
    let two = two_shipped(&moto).await;
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().join("officer");

    let built = remote(&moto, &home, &["index"]).success();

    for name in ["a", "b"] {
        let fetched = format!("of receiver {name} from {}", location(&moto, name));
        assert!(
            built
                .stderr
                .lines()
                .any(|l| l.starts_with("fetched 3 objects (") && l.ends_with(&fetched)),
            "{}",
            built.report()
        );
    }
    assert!(
        built
            .stdout
            .contains("merged.sqlite up to seq 11 of a, seq 11 of b"),
        "{}",
        built.report()
    );
    let mirror = home.join("remote/rollcall-audit/sites/a");
    assert_eq!(
        std::fs::read_to_string(mirror.join(".mirror")).unwrap(),
        format!("{}\n", location(&moto, "a"))
    );
    assert_eq!(
        std::fs::read_to_string(mirror.join(".receiver")).unwrap(),
        "a\n"
    );

    // Inside a's restart, inside b's, inside a gap of both, and outside.
    for at in [
        "2026-11-27T12:20:30Z",
        "2026-11-27T13:10:30Z",
        "2026-11-27T14:30:00Z",
        "2026-11-27T15:10:00Z",
    ] {
        for room in ["room-1", "room-2"] {
            let args = ["roster", "--room", room, "--at", at, "--format", "csv"];
            let local = two.ok(&args);
            let read = remote(&moto, &home, &args).success();
            assert_eq!(read.stdout, local.stdout, "{room} at {at}");
            assert_eq!(warnings(&read), warnings(&local), "{}", read.report());
        }
    }
    let again = remote(&moto, &home, &["rooms", "--format", "json"]).success();
    for name in ["a", "b"] {
        let up_to_date = format!("receiver {name} from {}: up to date", location(&moto, name));
        assert!(again.stderr.contains(&up_to_date), "{}", again.report());
    }
    assert!(!again.stderr.contains("fetched"), "{}", again.report());
    assert_eq!(again.stdout, two.ok(&["rooms", "--format", "json"]).stdout);
    for args in [
        &["export"][..],
        &["export", "--format", "jsonl"],
        &["history", "--person", "ana@example.com", "--format", "json"],
        &["tail", "-n", "4"],
    ] {
        let read = remote(&moto, &home, args).success();
        assert_eq!(read.stdout, two.ok(args).stdout, "{}", read.report());
    }
    // The mirror is checked as any log directory is, and is no live log.
    run(rollcall(&mirror).arg("verify")).success();
    let served = run(rollcall(&mirror).args(["serve", "--listen", "127.0.0.1:0"])).code(2);
    assert!(
        served.stderr.contains("is a mirror of"),
        "{}",
        served.report()
    );
    let followed = remote(&moto, &home, &["tail", "-f"]).code(2);
    assert!(
        followed.stderr.contains("not live"),
        "{}",
        followed.report()
    );
    // Without --remote, the home has no log of its own to answer from.
    let forgot = run(rollcall(&home).args(["rooms"])).success();
    assert!(
        forgot.stderr.contains("add --remote"),
        "{}",
        forgot.report()
    );
}

#[tokio::test]
async fn a_receiver_is_read_once_from_its_own_dir_and_two_of_one_name_in_the_bucket_are_refused() {
    let moto = Moto::start().await;
    let two = two_shipped(&moto).await;

    let read = remote(&moto, &two.a.dir, &["export", "--format", "jsonl"]).success();

    assert!(
        read.stderr.contains(&format!(
            "receiver a from {}: read from {} instead",
            location(&moto, "a"),
            two.a.dir.display()
        )),
        "{}",
        read.report()
    );
    assert_eq!(
        read.stdout,
        two.ok(&["export", "--format", "jsonl"]).stdout,
        "{}",
        read.report()
    );
    let mirrors = two.a.dir.join("remote/rollcall-audit/sites");
    let mirrored: Vec<_> = std::fs::read_dir(&mirrors)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(mirrored, ["b"]);
    // The mirror beside it changes nothing of a's own log.
    run(rollcall(&two.a.dir).arg("verify")).success();

    // b ships under a second prefix too: two logs in the bucket named b.
    let mut command = rollcall(&two.b.dir);
    command.arg("archive");
    moto.configure(&mut command, "elsewhere");
    run(&mut command).success();
    let temp = tempfile::tempdir().unwrap();
    let mut command = rollcall(temp.path());
    command.arg("export");
    for prefix in ["elsewhere", PREFIX] {
        command
            .arg("--remote")
            .arg(format!("s3://{}/{prefix}", moto.bucket));
    }
    moto.configure(&mut command, PREFIX);
    let refused = run(&mut command).code(2);
    assert!(
        refused.stderr.contains(&format!(
            "two receivers named b are under --remote, s3://{0}/elsewhere/b/ and s3://{0}/{PREFIX}/b/",
            moto.bucket
        )),
        "{}",
        refused.report()
    );
}

#[tokio::test]
async fn a_read_refuses_an_archive_that_is_not_what_its_digest_says_naming_it_and_keeps_nothing() {
    let moto = Moto::start().await;
    let log = closed_log(3).await;
    let mut command = rollcall(&log.dir);
    command.arg("archive").env("ROLLCALL_RECEIVER", "site-a");
    moto.configure(&mut command, PREFIX);
    run(&mut command).success();
    let key = |day: &str| format!("{PREFIX}/site-a/archive/{day}.jsonl.gz");
    // A second version over the first day's archive: the oldest is the
    // evidence, and is what is read.
    moto.put_plain(&key("2026-11-27"), b"not an archive").await;
    // The second day's only version replaced by junk.
    let real = moto.get(&key("2026-11-28")).await;
    assert!((200..300).contains(&moto.delete_version(&key("2026-11-28")).await));
    moto.put_plain(&key("2026-11-28"), b"not an archive").await;
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().join("officer");
    let mirror = home.join("remote/rollcall-audit/sites/site-a");

    let refused = remote(&moto, &home, &["export"]).code(2);

    assert!(
        refused.stderr.contains(&format!(
            "s3://rollcall-audit/{} is not the archive its digest describes",
            key("2026-11-28")
        )),
        "{}",
        refused.report()
    );
    let kept: Vec<_> = ["archive", "checkpoints"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(mirror.join(sub)).unwrap())
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(kept.is_empty(), "kept of a failed read: {kept:?}");

    assert!((200..300).contains(&moto.delete_version(&key("2026-11-28")).await));
    moto.put_plain(&key("2026-11-28"), &real).await;
    let read = remote(&moto, &home, &["export"]).success();

    assert!(
        read.stderr.contains("fetched 5 objects"),
        "{}",
        read.report()
    );
    assert_eq!(
        read.stdout,
        run(rollcall(&log.dir).arg("export")).success().stdout
    );
}
