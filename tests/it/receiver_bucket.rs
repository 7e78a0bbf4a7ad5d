//! Several receivers in one bucket (moto, through the real binary): each
//! ships to its own folder `PREFIX/NAME/`, a log that shipped to
//! `PREFIX/` itself before receivers had names keeps shipping there, and
//! `restore` finds the receivers under the prefix and picks one by name.

use std::path::Path;

use crate::offsite::{closed_log, local_objects as archived};
use crate::support::bin::{Run, rollcall, run};
use crate::support::logs::TestLog;
use crate::support::moto::Moto;

const PREFIX: &str = "shared";

/// `rollcall ARGS` on `dir` against the bucket's shared prefix, as
/// receiver `receiver` when given.
fn with_bucket(moto: &Moto, dir: &Path, receiver: Option<&str>, args: &[&str]) -> Run {
    let mut command = rollcall(dir);
    command.args(args);
    moto.configure(&mut command, PREFIX);
    if let Some(receiver) = receiver {
        command.env("ROLLCALL_RECEIVER", receiver);
    }
    run(&mut command)
}

/// The bucket's keys under `under`.
async fn keys_under(moto: &Moto, under: &str) -> Vec<String> {
    let mut keys: Vec<String> = moto
        .keys()
        .await
        .into_iter()
        .filter(|k| k.starts_with(under))
        .collect();
    keys.sort();
    keys
}

fn export(dir: &Path) -> String {
    run(rollcall(dir).arg("export")).success().stdout
}

#[tokio::test]
async fn two_receivers_shipping_to_one_prefix_each_land_in_their_own_folder_and_neither_sees_a_mismatch()
 {
    let moto = Moto::start().await;
    let (a, b) = (closed_log(3).await, closed_log(4).await);

    let shipped_a = with_bucket(&moto, &a.dir, Some("site-a"), &["archive"]).success();
    let shipped_b = with_bucket(&moto, &b.dir, Some("site-b"), &["archive"]).success();

    for (log, name, shipped) in [(&a, "site-a", &shipped_a), (&b, "site-b", &shipped_b)] {
        assert!(!shipped.stdout.contains("MISMATCH"), "{}", shipped.report());
        let objects = archived(&log.dir);
        assert_eq!(objects.len(), 4);
        let folder = format!("{PREFIX}/{name}/");
        let keys = keys_under(&moto, &folder).await;
        for object in &objects {
            let key = format!("{folder}{object}");
            assert!(keys.contains(&key), "{key} not in {keys:?}");
            assert_eq!(
                moto.get(&key).await,
                std::fs::read(log.dir.join(object)).unwrap()
            );
        }
        assert!(
            keys.iter()
                .any(|k| k.starts_with(&format!("{folder}checkpoints/"))),
            "{keys:?}"
        );
        assert_eq!(
            std::fs::read_to_string(log.dir.join(".offsite-layout")).unwrap(),
            format!("folder {name}\n")
        );
    }
    assert!(
        keys_under(&moto, &format!("{PREFIX}/archive/"))
            .await
            .is_empty(),
        "nothing at the prefix itself"
    );
    for (log, name) in [(&a, "site-a"), (&b, "site-b")] {
        let again = with_bucket(&moto, &log.dir, Some(name), &["archive"]).success();
        assert!(
            again.stdout.contains("nothing to ship"),
            "{}",
            again.report()
        );
        let verified = with_bucket(&moto, &log.dir, None, &["verify", "--remote"]).success();
        assert!(
            !verified.stdout.contains("only in the bucket"),
            "the other receiver's objects are not this one's: {}",
            verified.report()
        );
    }
}

/// What a directory looks like that shipped before receivers had names:
/// its first day's archive and digest at `PREFIX/archive/`, noted in
/// `.offsite-shipped`, no `.receiver`, no layout recorded.
async fn shipped_flat_before_names(moto: &Moto) -> TestLog {
    let log = closed_log(3).await;
    run(rollcall(&log.dir).arg("archive")).success();
    let first_day: Vec<String> = archived(&log.dir)
        .into_iter()
        .filter(|n| n.contains("2026-11-27"))
        .collect();
    for name in &first_day {
        let bytes = std::fs::read(log.dir.join(name)).unwrap();
        moto.put_plain(&format!("{PREFIX}/{name}"), &bytes).await;
    }
    let noted: String = first_day.iter().map(|n| format!("{n}\n")).collect();
    std::fs::write(log.dir.join(".offsite-shipped"), noted).unwrap();
    log
}

#[tokio::test]
async fn a_directory_that_shipped_to_the_prefix_itself_before_receivers_had_names_keeps_shipping_there()
 {
    let moto = Moto::start().await;
    let old = shipped_flat_before_names(&moto).await;
    let other = closed_log(4).await;
    with_bucket(&moto, &other.dir, Some("site-b"), &["archive"]).success();

    let shipped = with_bucket(&moto, &old.dir, Some("site-a"), &["archive"]).success();

    assert!(!shipped.stdout.contains("MISMATCH"), "{}", shipped.report());
    let flat = keys_under(&moto, &format!("{PREFIX}/archive/")).await;
    let expected: Vec<String> = archived(&old.dir)
        .iter()
        .map(|n| format!("{PREFIX}/{n}"))
        .collect();
    assert_eq!(flat, expected, "{}", shipped.report());
    assert!(
        !keys_under(&moto, &format!("{PREFIX}/checkpoints/"))
            .await
            .is_empty()
    );
    assert!(
        keys_under(&moto, &format!("{PREFIX}/site-a/"))
            .await
            .is_empty()
    );
    assert_eq!(
        std::fs::read_to_string(old.dir.join(".offsite-layout")).unwrap(),
        "flat\n"
    );
    // The other receiver's folder under the same prefix is not this log's.
    let verified = with_bucket(&moto, &old.dir, None, &["verify", "--remote"]).success();
    assert!(!verified.stdout.contains("site-b"), "{}", verified.report());
    // Recorded: a later run ships flat even with the record of what it
    // shipped gone.
    std::fs::remove_file(old.dir.join(".offsite-shipped")).unwrap();
    with_bucket(&moto, &old.dir, Some("site-a"), &["archive"]).success();
    assert!(
        keys_under(&moto, &format!("{PREFIX}/site-a/"))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn restore_picks_a_receiver_by_name_and_with_several_under_the_prefix_refuses_to_guess() {
    let moto = Moto::start().await;
    let (a, b) = (closed_log(3).await, closed_log(4).await);
    with_bucket(&moto, &a.dir, Some("site-a"), &["archive"]).success();
    with_bucket(&moto, &b.dir, Some("site-b"), &["archive"]).success();
    let temp = tempfile::tempdir().unwrap();
    let restore = |into: &str, receiver: Option<&str>| {
        let mut args = vec!["restore"];
        if let Some(receiver) = receiver {
            args.extend(["--receiver", receiver]);
        }
        with_bucket(&moto, &temp.path().join(into), None, &args)
    };

    let guessed = restore("guessed", None).code(2);
    let unknown = restore("unknown", Some("site-c")).code(2);
    let picked = restore("b", Some("site-b")).success();

    assert!(
        guessed.stderr.contains("site-a, site-b") && guessed.stderr.contains("--receiver"),
        "{}",
        guessed.report()
    );
    assert!(
        unknown.stderr.contains("site-a, site-b"),
        "{}",
        unknown.report()
    );
    assert!(!temp.path().join("guessed").exists());
    assert!(
        picked.stdout.contains("restored 5 objects")
            && picked.stdout.contains("of receiver site-b"),
        "{}",
        picked.report()
    );
    let restored = temp.path().join("b");
    assert_eq!(export(&restored), export(&b.dir));
    assert_eq!(
        std::fs::read_to_string(restored.join(".receiver")).unwrap(),
        "site-b\n"
    );
    run(rollcall(&restored).arg("verify")).success();
    with_bucket(&moto, &restored, None, &["verify", "--remote"]).success();
}

#[tokio::test]
async fn restore_without_a_name_takes_the_one_receiver_there_even_of_the_old_layout() {
    let moto = Moto::start().await;
    let old = shipped_flat_before_names(&moto).await;
    with_bucket(&moto, &old.dir, None, &["archive"]).success();
    let temp = tempfile::tempdir().unwrap();
    let restored = temp.path().join("restored");

    let done = with_bucket(&moto, &restored, None, &["restore"]).success();

    assert!(
        done.stdout.contains(&format!("of receiver {PREFIX}")),
        "the old layout's log is named after its prefix: {}",
        done.report()
    );
    assert_eq!(export(&restored), export(&old.dir));
    assert_eq!(
        std::fs::read_to_string(restored.join(".offsite-layout")).unwrap(),
        "flat\n"
    );
    with_bucket(&moto, &restored, None, &["verify", "--remote"]).success();
    let by_name = with_bucket(
        &moto,
        &temp.path().join("by-name"),
        None,
        &["restore", "--receiver", PREFIX],
    );
    by_name.success();
}

#[tokio::test]
async fn a_receiver_named_as_the_old_layout_log_beside_it_is_never_taken_for_it() {
    let moto = Moto::start().await;
    let old = shipped_flat_before_names(&moto).await;
    with_bucket(&moto, &old.dir, None, &["archive"]).success();
    // A receiver whose name is the prefix's own: its folder is
    // PREFIX/PREFIX/, and the old-layout log is named PREFIX too.
    let twin = closed_log(4).await;
    with_bucket(&moto, &twin.dir, Some(PREFIX), &["archive"]).success();
    let temp = tempfile::tempdir().unwrap();

    let refused = with_bucket(
        &moto,
        &temp.path().join("restored"),
        None,
        &["restore", "--receiver", PREFIX],
    )
    .code(2);

    assert!(
        refused.stderr.contains("two logs under")
            && refused.stderr.contains(&format!("{PREFIX}/{PREFIX}/")),
        "{}",
        refused.report()
    );
    assert!(!temp.path().join("restored").exists());
}
