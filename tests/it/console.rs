//! The web console over plain HTTP: nothing without a login, the login
//! and its limit, sessions and CSRF, search, room, person, integrity and
//! the download, and the access log of it all.

use std::os::unix::fs::PermissionsExt;

use crate::support::bin;
use crate::support::console::{ConsoleApp, PASSWORD, access_files, access_log, csrf_of};
use crate::support::moto::Moto;

/// Every page but the login form and the stylesheet.
const PAGES: [&str; 6] = [
    "/",
    "/?person=alice",
    "/room?id=room-1",
    "/person?id=person-alice@example.com",
    "/integrity",
    "/download?person=alice@example.com",
];

#[tokio::test]
async fn every_page_sends_a_visitor_without_a_session_to_the_login_form() {
    let app = ConsoleApp::spawn().await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    for page in PAGES {
        let (status, location, body) = app.get(page, None).await;
        assert_eq!((status, location.as_str()), (303, "/login"), "{page}");
        assert!(!body.contains("alice"), "{page} shows nothing: {body}");
    }
    for form in ["/logout", "/integrity/verify"] {
        let (status, location) = app.post(form, None, &[("csrf", "x")]).await;
        assert_eq!((status, location.as_str()), (303, "/login"), "{form}");
    }
    let forged = "rollcall_console=0000";
    let (status, location, _) = app.get("/", Some(forged)).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/login"),
        "a made-up cookie"
    );
    let (status, _, body) = app.get("/login", None).await;
    assert_eq!(status, 200);
    assert!(body.contains("type=\"password\""));
    let (status, _, css) = app.get("/assets/console.css", None).await;
    assert_eq!(status, 200);
    assert!(css.len() < 8 * 1024, "the stylesheet stays small");
    assert!(
        app.access_log().iter().all(|l| l["action"] == "login"),
        "nothing was searched or shown"
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_repeated_failures_are_limited() {
    let app = ConsoleApp::spawn().await;
    let answer = app.try_login("wrong").await;
    assert_eq!(answer.status(), 401);
    assert!(answer.headers().get("set-cookie").is_none());
    assert!(answer.text().await.unwrap().contains("Wrong password"));
    for _ in 1..5 {
        assert_eq!(app.try_login("wrong").await.status(), 401);
    }
    let limited = app.try_login(PASSWORD).await;
    assert_eq!(limited.status(), 429, "even the right one, for a while");
    assert!(limited.headers().get("retry-after").is_some());
    app.clock.advance(time::Duration::minutes(1));
    assert_eq!(app.try_login(PASSWORD).await.status(), 303);
    let outcomes: Vec<String> = app
        .access_log()
        .iter()
        .map(|l| {
            assert_eq!(l["action"], "login");
            assert!(l["client"].as_str().unwrap().starts_with("127.0.0.1"));
            l["outcome"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(outcomes[..5], ["wrong_password"; 5]);
    assert_eq!(outcomes[5..], ["rate_limited", "ok"]);
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_strict_and_ends_at_logout_or_when_idle() {
    let app = ConsoleApp::spawn().await;
    let answer = app.try_login(PASSWORD).await;
    let set = answer.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(
        !set.contains("Secure"),
        "the test's public URL is not HTTPS"
    );

    let cookie = app.login().await;
    let (_, _, page) = app.get("/", Some(&cookie)).await;
    let (status, location) = app
        .post("/logout", Some(&cookie), &[("csrf", &csrf_of(&page))])
        .await;
    assert_eq!((status, location.as_str()), (303, "/login"));
    assert_eq!(app.get("/", Some(&cookie)).await.0, 303, "logged out");

    let cookie = app.login().await;
    app.clock.advance(time::Duration::hours(7));
    assert_eq!(app.get("/", Some(&cookie)).await.0, 200, "used within 8 h");
    app.clock.advance(time::Duration::hours(8));
    assert_eq!(app.get("/", Some(&cookie)).await.1, "/login", "idle 8 h");
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_is_refused() {
    let app = ConsoleApp::spawn().await;
    let cookie = app.login().await;
    let other = app.login().await;
    let (_, _, other_page) = app.get("/", Some(&other)).await;
    let stolen = csrf_of(&other_page);
    for form in [
        vec![("note", "no token")],
        vec![("csrf", "forged")],
        vec![("csrf", stolen.as_str())],
    ] {
        for path in ["/logout", "/integrity/verify"] {
            let (status, _) = app.post(path, Some(&cookie), &form).await;
            assert_eq!(status, 403, "{path} with {form:?}");
        }
    }
    assert_eq!(app.get("/", Some(&cookie)).await.0, 200, "still logged in");
    assert!(app.access_log().iter().all(|l| l["action"] != "verify"));
    let (_, _, page) = app.get("/", Some(&cookie)).await;
    let (status, location) = app
        .post(
            "/integrity/verify",
            Some(&cookie),
            &[("csrf", &csrf_of(&page))],
        )
        .await;
    assert_eq!((status, location.as_str()), (303, "/integrity"));
}

#[tokio::test]
async fn search_finds_a_person_by_part_of_a_name_newest_first_and_the_access_log_says_who_looked() {
    let app = ConsoleApp::spawn().await;
    let first = app
        .deliver("created", "room-1", "alice@example.com", "Alice Liddell")
        .await;
    app.deliver("created", "room-1", "bob@example.com", "Bob")
        .await;
    let last = app
        .deliver("created", "room-2", "alice@example.com", "Alice Liddell")
        .await;
    let cookie = app.login().await;

    let (status, _, page) = app.get("/?person=LIDD", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(page.contains("2 records"), "{page}");
    assert!(!page.contains("bob@example.com"));
    let newest = page.find(&format!(">{last}<")).expect("the newest row");
    let oldest = page.find(&format!(">{first}<")).expect("the oldest row");
    assert!(newest < oldest, "newest first");
    assert!(
        page.contains("href=\"/room?id=room-2\""),
        "rows link to their room"
    );
    assert!(page.contains("href=\"/person?id=person-alice%40example.com\""));

    let (_, _, page) = app.get("/?room=room-1&event=joined", Some(&cookie)).await;
    assert!(page.contains("2 records"), "{page}");
    let (status, _, page) = app.get("/?from=yesterday", Some(&cookie)).await;
    assert_eq!(status, 400);
    assert!(page.contains("is not a time"));

    let searches: Vec<_> = app
        .access_log()
        .into_iter()
        .filter(|l| l["action"] == "search")
        .collect();
    assert_eq!(searches[0]["filters"]["person"], "LIDD");
    assert_eq!(searches[0]["rows"], 2);
    assert_eq!(searches[0]["session"], app.access_log()[0]["session"]);
    assert!(
        searches[0]["at"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-27T")
    );
}

#[tokio::test]
async fn search_and_room_pages_show_the_newest_50_and_the_older_link_the_rest_none_repeated_or_missing()
 {
    let app = ConsoleApp::spawn().await;
    let mut delivered = Vec::new();
    for i in 0..60 {
        let email = format!("p{i}@example.com");
        delivered.push(app.deliver("created", "room-1", &email, "P").await);
    }
    delivered.reverse();
    let cookie = app.login().await;
    for (first, section) in [("/?event=joined", "<table"), ("/room?id=room-1", "History")] {
        let (_, _, page) = app.get(first, Some(&cookie)).await;
        let newest = record_seqs(&page, section);
        assert_eq!(
            newest,
            delivered[..50],
            "{first}: the 50 newest, newest first"
        );
        let rows = records_table(&page, section);
        assert!(rows.contains("p59@example.com") && !rows.contains("p9@example.com"));
        let older = older_link(&page).expect("an older link");
        let (status, _, page) = app.get(&older, Some(&cookie)).await;
        assert_eq!(status, 200, "{older}");
        let rest = record_seqs(&page, section);
        assert_eq!(rest, delivered[50..], "{older}: the next ones, oldest last");
        let rows = records_table(&page, section);
        assert!(rows.contains("p9@example.com") && !rows.contains("p59@example.com"));
        assert_eq!(older_link(&page), None, "{older}: nothing older");
        assert!(page.contains("Newest"), "a way back: {page}");
    }
}

/// The records table after `section`.
fn records_table<'a>(page: &'a str, section: &str) -> &'a str {
    let table = &page[page.find(section).expect("the section")..];
    let table = &table[table
        .find("<table class=\"records\"")
        .expect("a records table")..];
    &table[..table.find("</table>").unwrap()]
}

/// The seqs of the records table after `section`, in page order.
fn record_seqs(page: &str, section: &str) -> Vec<u64> {
    records_table(page, section)
        .split("<td class=\"num\">")
        .skip(1)
        .map(|cell| cell[..cell.find('<').unwrap()].parse().unwrap())
        .collect()
}

/// Where a page's "Older" link goes.
fn older_link(page: &str) -> Option<String> {
    let at = page.find("rel=\"next\" href=\"")? + "rel=\"next\" href=\"".len();
    let href = &page[at..];
    Some(href[..href.find('"').unwrap()].replace("&amp;", "&"))
}

#[tokio::test]
async fn a_display_name_with_markup_is_shown_as_text() {
    let app = ConsoleApp::spawn().await;
    let name = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    app.deliver("created", "room-1", "mallory@example.com", name)
        .await;
    let cookie = app.login().await;
    for page in [
        "/?person=mallory",
        "/room?id=room-1",
        "/person?id=person-mallory%40example.com",
    ] {
        let (status, _, body) = app.get(page, Some(&cookie)).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}: {body}"
        );
        assert!(
            !body.contains("<script") && !body.contains("<img"),
            "{page}"
        );
    }
}

#[tokio::test]
async fn the_download_is_byte_for_byte_what_rollcall_export_gives() {
    let app = ConsoleApp::spawn().await;
    app.deliver(
        "created",
        "room-1",
        "alice@example.com",
        "=HYPERLINK(\"x\")",
    )
    .await;
    app.deliver(
        "created",
        "room-1",
        "bob@example.com",
        "Bob, \"the builder\"",
    )
    .await;
    app.deliver(
        "deleted",
        "room-1",
        "alice@example.com",
        "=HYPERLINK(\"x\")",
    )
    .await;
    let cookie = app.login().await;
    for (query, args) in [
        ("", vec![]),
        (
            "person=ALICE@example.com",
            vec!["--person", "ALICE@example.com"],
        ),
        (
            "room=room-1&event=left",
            vec!["--room", "room-1", "--event", "left"],
        ),
        (
            "from=2026-11-27T12:01:00Z&to=2026-11-28",
            vec!["--from", "2026-11-27T12:01:00Z", "--to", "2026-11-28"],
        ),
    ] {
        let (status, _, csv) = app.get(&format!("/download?{query}"), Some(&cookie)).await;
        assert_eq!(status, 200, "{query}");
        let export = bin::run(bin::rollcall(&app.dir).arg("export").args(&args)).success();
        assert_eq!(csv, export.stdout, "{query}");
    }
    let (_, _, csv) = app
        .get("/download?person=alice@example.com", Some(&cookie))
        .await;
    assert!(csv.contains("'=HYPERLINK"), "the formula guard: {csv}");

    let (status, _, page) = app.get("/download?person=ali", Some(&cookie)).await;
    assert_eq!(status, 400, "a partial name is not an export filter");
    assert!(page.contains("whole email address"));
    let downloads: Vec<_> = app
        .access_log()
        .into_iter()
        .filter(|l| l["action"] == "download")
        .collect();
    assert_eq!(downloads[1]["filters"]["person"], "ALICE@example.com");
    assert_eq!(downloads[1]["rows"], 2);
    assert_eq!(downloads.last().unwrap()["outcome"], "refused");
}

#[tokio::test]
async fn a_download_filtered_by_source_is_what_rollcall_export_source_gives() {
    let app = ConsoleApp::spawn().await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    app.deliver("deleted", "room-1", "alice@example.com", "Alice")
        .await;
    let cookie = app.login().await;
    for source in ["webhook", "reconciled"] {
        let (status, _, csv) = app
            .get(&format!("/download?source={source}"), Some(&cookie))
            .await;
        assert_eq!(status, 200, "{source}: {csv}");
        let export =
            bin::run(bin::rollcall(&app.dir).args(["export", "--source", source])).success();
        assert_eq!(csv, export.stdout, "{source}");
    }
    let (_, _, webhook) = app.get("/download?source=webhook", Some(&cookie)).await;
    assert!(webhook.contains("alice@example.com"), "{webhook}");
    let (_, _, reconciled) = app.get("/download?source=reconciled", Some(&cookie)).await;
    assert_eq!(
        reconciled.lines().count(),
        1,
        "the header only: {reconciled}"
    );
}

#[tokio::test]
async fn the_room_pages_access_line_records_the_outcome_of_the_lookup_with_at_and_page() {
    let app = ConsoleApp::spawn().await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    let cookie = app.login().await;
    let at = "2026-11-27T12:30:00Z";
    let (status, _, _) = app
        .get(&format!("/room?id=room-1&at={at}&page=1"), Some(&cookie))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.get("/room?id=nowhere", Some(&cookie)).await.0, 404);
    let rooms: Vec<_> = app
        .access_log()
        .into_iter()
        .filter(|l| l["action"] == "room")
        .collect();
    assert_eq!(rooms.len(), 2, "{rooms:?}");
    assert_eq!(rooms[0]["subject"], "room-1");
    assert_eq!(rooms[0]["outcome"], "ok");
    assert_eq!(rooms[0]["view"]["at"], at);
    assert_eq!(rooms[0]["view"]["page"], 1);
    assert_eq!(rooms[1]["subject"], "nowhere");
    assert_eq!(rooms[1]["outcome"], "not_found", "{:?}", rooms[1]);
    assert_eq!(rooms[1]["view"]["at"], "now");
    assert_eq!(rooms[1]["view"]["page"], 0);
}

#[tokio::test]
async fn the_room_page_shows_the_roster_now_the_history_and_coverage_gaps() {
    let app = ConsoleApp::spawn().await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    app.deliver("created", "room-1", "bob@example.com", "Bob")
        .await;
    app.deliver("deleted", "room-1", "bob@example.com", "Bob")
        .await;
    let cookie = app.login().await;
    let (status, _, page) = app.get("/room?id=room-1", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(page.contains("Members now (1)"), "{page}");
    let roster = &page[page.find("Members now").unwrap()..page.find("Coverage gaps").unwrap()];
    assert!(roster.contains("alice@example.com") && !roster.contains("bob@example.com"));
    assert!(page.contains("History (3 records)"));
    assert!(page.contains("None recorded"), "no stop yet: {page}");

    let (status, _, page) = app
        .get("/room?id=room-1&at=2026-11-27T12:01:30Z", Some(&cookie))
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Members at 2026-11-27T12:01:30.000Z (2)"),
        "{page}"
    );
    let roster = &page[page.find("Members at").unwrap()..page.find("Coverage gaps").unwrap()];
    assert!(
        roster.contains("bob@example.com"),
        "Bob had not left yet: {roster}"
    );
    assert!(
        roster.contains("Unknown: members who joined before"),
        "no reconciled baseline, said plainly: {roster}"
    );
    let (status, _, page) = app.get("/room?id=room-1&at=soon", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(page.contains("is not a time"), "{page}");
    assert_eq!(app.get("/room?id=nowhere", Some(&cookie)).await.0, 404);
}

#[tokio::test]
async fn a_stop_and_start_of_the_receiver_is_a_coverage_gap_on_the_room_page() {
    let app = ConsoleApp::spawn().await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    let app = app.restart().await;
    let cookie = app.login().await;
    let (_, _, page) = app.get("/room?id=room-1", Some(&cookie)).await;
    let gaps = &page[page.find("Coverage gaps").unwrap()..page.find("History").unwrap()];
    assert!(
        gaps.contains("From 2026-11-27T12:01:00.000Z to 2026-11-27T13:01:00.000Z: stopped cleanly"),
        "{gaps}"
    );
    let roster = &page[page.find("Members now").unwrap()..];
    assert!(
        roster.contains("alice@example.com"),
        "the roster survives a restart"
    );
}

#[tokio::test]
async fn members_now_on_a_room_page_of_a_log_without_a_reconciled_baseline_say_who_may_be_missing()
{
    let app = ConsoleApp::spawn().await;
    let joined = app
        .deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    let cookie = app.login().await;
    let (status, _, page) = app.get("/room?id=room-1", Some(&cookie)).await;
    assert_eq!(status, 200);
    let roster = &page
        [page.find("Members now (1)").expect("members now")..page.find("Coverage gaps").unwrap()];
    assert!(
        roster.contains("Unknown: members who joined before 2026-11-27T12:00:00.000Z and never changed since are not in the log: run `rollcall reconcile`"),
        "the warning `rollcall roster` prints: {roster}"
    );
    assert!(
        roster.contains(&format!("<td class=\"num\">{joined}</td>")),
        "Alice's row names the join that began her stay: {roster}"
    );
}

#[tokio::test]
async fn a_room_page_at_a_time_inside_a_coverage_gap_says_the_roster_is_unknown() {
    let app = ConsoleApp::spawn().await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    let app = app.restart().await;
    let cookie = app.login().await;
    let (status, _, page) = app
        .get("/room?id=room-1&at=2026-11-27T12:30:00Z", Some(&cookie))
        .await;
    assert_eq!(status, 200);
    let roster =
        &page[page.find("Members at").expect("members at")..page.find("Coverage gaps").unwrap()];
    assert!(
        roster.contains("Unknown: 2026-11-27T12:30:00.000Z falls in a coverage gap from 2026-11-27T12:01:00.000Z to 2026-11-27T13:01:00.000Z"),
        "{roster}"
    );
    assert!(
        roster.contains("alice@example.com"),
        "what the log knew: {roster}"
    );
    let (_, _, now) = app.get("/room?id=room-1", Some(&cookie)).await;
    let roster = &now[now.find("Members now").unwrap()..now.find("Coverage gaps").unwrap()];
    assert!(
        !roster.contains("coverage gap"),
        "now is after the gap: {roster}"
    );
}

#[tokio::test]
async fn a_record_delivered_just_before_a_page_is_asked_for_is_on_it() {
    let app = ConsoleApp::spawn().await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    let cookie = app.login().await;
    let (_, _, page) = app.get("/room?id=room-1", Some(&cookie)).await;
    assert!(page.contains("Members now (1)"), "{page}");
    let seq = app
        .deliver_now("created", "room-1", "bob@example.com", "Bob")
        .await;
    let (_, _, page) = app.get("/room?id=room-1", Some(&cookie)).await;
    assert!(page.contains("Members now (2)"), "{page}");
    assert_eq!(record_seqs(&page, "History")[0], seq, "{page}");
    let (_, _, page) = app.get("/?person=bob", Some(&cookie)).await;
    assert!(page.contains(&format!(">{seq}<")), "{page}");
    assert!(!page.contains("still catching up"), "{page}");
}

#[tokio::test]
async fn serve_started_on_a_log_without_an_index_serves_its_pages() {
    let app = ConsoleApp::spawn().await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    let app = app
        .restart_with(|dir| {
            for file in ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"] {
                let _ = std::fs::remove_file(dir.join(file));
            }
        })
        .await;
    let cookie = app.login().await;
    let building = "and still catching up";
    let (status, _, page) = app.get("/?person=alice", Some(&cookie)).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("alice@example.com") || page.contains(building),
        "shown, or said to be on its way: {page}"
    );
    let (status, _, page) = app.get("/room?id=room-1", Some(&cookie)).await;
    assert!(
        (status == 200 && page.contains("alice@example.com"))
            || (status == 404 && page.contains(building)),
        "{status}: {page}"
    );
}

#[tokio::test]
async fn the_person_page_lists_every_room_with_its_periods() {
    let app = ConsoleApp::spawn().await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    app.deliver("created", "room-2", "alice@example.com", "Alice")
        .await;
    app.deliver("deleted", "room-1", "alice@example.com", "Alice")
        .await;
    let cookie = app.login().await;
    let (status, _, page) = app
        .get("/person?id=person-alice%40example.com", Some(&cookie))
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("Rooms (2 stays)"), "{page}");
    assert!(page.contains("2026-11-27T12:00:00.000Z") && page.contains("2026-11-27T12:02:00.000Z"));
    assert!(page.contains("still a member"));
    assert_eq!(app.get("/person?id=nobody", Some(&cookie)).await.0, 404);
}

#[tokio::test]
async fn the_integrity_page_shows_the_verify_result_and_the_head() {
    let app = ConsoleApp::spawn().await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    let cookie = app.login().await;
    let (_, _, page) = app.get("/", Some(&cookie)).await;
    let (status, _) = app
        .post(
            "/integrity/verify",
            Some(&cookie),
            &[("csrf", &csrf_of(&page))],
        )
        .await;
    assert_eq!(status, 303);
    let (status, _, page) = app.get("/integrity?wait=1", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(page.contains("Intact: 2 records"), "{page}");
    assert!(page.contains("seq 2"), "the durable head: {page}");
    assert!(page.contains("Run verify again"));
    let verify = bin::run(bin::rollcall(&app.dir).arg("verify")).success();
    let head = verify
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("head: "))
        .unwrap();
    assert!(page.contains(head), "the head verify prints: {head}");
}

#[tokio::test]
async fn without_a_password_set_one_is_generated_into_a_private_file() {
    let app = ConsoleApp::spawn_with(None).await;
    let path = app.dir.join(".console-password");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let password = std::fs::read_to_string(&path).unwrap();
    assert_eq!(app.try_login(PASSWORD).await.status(), 401);
    assert_eq!(app.try_login(password.trim()).await.status(), 303);
    let log = access_log(&app.dir);
    assert!(
        !serde_json::to_string(&log)
            .unwrap()
            .contains(password.trim())
    );
}

#[tokio::test]
async fn behind_a_sign_on_proxy_its_user_header_signs_in_and_names_them_in_the_access_log() {
    let app = ConsoleApp::spawn().await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    let proxied = |path: &str| {
        app.client
            .get(format!("{}{path}", app.console))
            .header("x-forwarded-email", "officer@example.com")
    };
    let page = proxied("/?person=alice").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("alice@example.com"));
    let answer = app
        .client
        .post(format!("{}/integrity/verify", app.console))
        .header("x-forwarded-email", "officer@example.com")
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        303,
        "the user's CSRF token holds across requests"
    );
    let log = app.access_log();
    assert_eq!(log[0]["session"], "proxy:officer@example.com");
    assert_eq!(log[1]["action"], "verify");
    assert_eq!(
        app.get("/", None).await.1,
        "/login",
        "without the header, the password"
    );
}

#[tokio::test]
async fn a_search_sees_what_was_recorded_since_the_last_one_across_midnight() {
    let app = ConsoleApp::spawn().await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    let cookie = app.login().await;
    let (_, _, page) = app.get("/?event=joined", Some(&cookie)).await;
    assert!(page.contains("1 records"), "{page}");
    app.deliver("created", "room-1", "bob@example.com", "Bob")
        .await;
    let (_, _, page) = app.get("/?event=joined", Some(&cookie)).await;
    assert!(page.contains("2 records") && page.contains("bob@example.com"));
    app.clock.advance(time::Duration::hours(12));
    app.deliver("created", "room-1", "carol@example.com", "Carol")
        .await;
    let cookie = app.login().await;
    let (_, _, page) = app.get("/?event=joined", Some(&cookie)).await;
    assert!(
        page.contains("3 records") && page.contains("2026-11-28T"),
        "{page}"
    );
}

#[tokio::test]
async fn a_forged_proxy_header_from_a_peer_outside_the_trusted_proxies_gets_the_login_form_and_no_data()
 {
    let app = ConsoleApp::spawn_trusting(&["10.0.0.0/8"]).await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    for page in PAGES {
        let answer = app
            .get_with(page, &[("x-forwarded-email", "ciso@example.com")])
            .await;
        assert_eq!(answer.status(), 303, "{page}");
        assert_eq!(answer.headers()["location"], "/login", "{page}");
        let body = answer.text().await.unwrap();
        assert!(!body.contains("alice"), "{page} shows nothing: {body}");
    }
    let log = app
        .access_log_once(|lines| lines.iter().any(|l| l["action"] == "proxy_header"))
        .await;
    assert!(
        log.iter().all(|l| l["session"].is_null()),
        "nobody was signed in: {log:?}"
    );
    let noted = log
        .iter()
        .find(|l| l["action"] == "proxy_header")
        .expect("the forged header is noted");
    assert_eq!(noted["outcome"], "untrusted_peer");
    assert!(noted["client"].as_str().unwrap().starts_with("127.0.0.1"));
}

#[tokio::test]
async fn a_proxy_header_sent_twice_signs_nobody_in_even_from_a_trusted_proxy() {
    let app = ConsoleApp::spawn_trusting(&["127.0.0.1/32"]).await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    // A proxy that appends its header to the client's own would pass
    // both on: the client's value must not count.
    let answer = app
        .get_with(
            "/download?",
            &[
                ("x-forwarded-email", "ciso@example.com"),
                ("x-forwarded-email", "officer@example.com"),
            ],
        )
        .await;
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/login");
    assert!(!answer.text().await.unwrap().contains("alice"));
}

#[tokio::test]
async fn the_proxy_header_from_a_configured_trusted_proxy_signs_its_user_in() {
    let app = ConsoleApp::spawn_trusting(&["127.0.0.1/32"]).await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    let answer = app
        .get_with(
            "/download?",
            &[("x-forwarded-email", "officer@example.com")],
        )
        .await;
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.unwrap().contains("alice@example.com"));
    assert_eq!(app.access_log()[0]["session"], "proxy:officer@example.com");
}

#[test]
fn a_trusted_header_on_a_non_loopback_console_without_a_trusted_proxy_refuses_to_start() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    let serve = |extra: &[&str]| {
        let mut command = bin::rollcall(&dir);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--console", "0.0.0.0:0"])
            .args(["--console-trust-header", "X-Forwarded-Email"])
            .args(extra)
            .env("ROLLCALL_SECRET", "s");
        command
    };
    let refused = bin::run(&mut serve(&[]));
    assert_ne!(refused.status.code(), Some(0), "{}", refused.report());
    assert!(
        refused.stderr.contains("--console-trusted-proxy"),
        "says what to add: {}",
        refused.report()
    );
    let server = bin::ServerProcess::start(&dir, |command| {
        command
            .args(["--console", "0.0.0.0:0"])
            .args(["--console-trust-header", "X-Forwarded-Email"])
            .args(["--console-trusted-proxy", "10.0.0.5"])
            .env("ROLLCALL_SECRET", "s");
    });
    assert!(server.terminate().success());
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_a_trusted_proxy_says_the_browser_used_https() {
    let app = ConsoleApp::spawn().await;
    let login = |proto: Option<&'static str>| {
        let mut request = app
            .client
            .post(format!("{}/login", app.console))
            .form(&[("password", PASSWORD)]);
        if let Some(proto) = proto {
            request = request.header("x-forwarded-proto", proto);
        }
        request.send()
    };
    let cookie =
        |answer: reqwest::Response| answer.headers()["set-cookie"].to_str().unwrap().to_string();
    let https = cookie(login(Some("https")).await.unwrap());
    assert!(https.ends_with("; Secure"), "{https}");
    let plain = cookie(login(None).await.unwrap());
    assert!(!plain.contains("Secure"), "{plain}");

    let untrusted = ConsoleApp::spawn_trusting(&["10.0.0.0/8"]).await;
    let answer = untrusted
        .client
        .post(format!("{}/login", untrusted.console))
        .header("x-forwarded-proto", "https")
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let set = cookie(answer);
    assert!(!set.contains("Secure"), "not from a trusted proxy: {set}");
}

#[tokio::test]
async fn each_use_of_a_session_renews_its_cookie_so_an_active_session_outlives_eight_hours() {
    let app = ConsoleApp::spawn().await;
    let cookie = app.login().await;
    let mut renewed = Vec::new();
    for _ in 0..3 {
        app.clock.advance(time::Duration::hours(5));
        let answer = app.get_with("/", &[("cookie", &cookie)]).await;
        assert_eq!(answer.status(), 200, "in use for 15 hours");
        let set = answer
            .headers()
            .get("set-cookie")
            .expect("the answer renews the cookie")
            .to_str()
            .unwrap()
            .to_string();
        renewed.push(set);
    }
    for set in &renewed {
        assert!(set.starts_with(&format!("{cookie};")), "{set}");
        assert!(set.contains("Max-Age=28800") && set.contains("HttpOnly"));
    }
    app.clock.advance(time::Duration::hours(8));
    let answer = app.get_with("/", &[("cookie", &cookie)]).await;
    assert_eq!(answer.headers()["location"], "/login", "idle 8 h ends it");
    assert!(answer.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn a_flood_of_wrong_logins_is_summarised_in_a_few_access_lines_while_deliveries_are_recorded()
{
    let mut app = ConsoleApp::spawn().await;
    let flood = async {
        for _ in 0..200 {
            let status = app.try_login("wrong").await.status();
            assert!(status == 401 || status == 429, "{status}");
        }
    };
    let deliveries = async {
        let mut seqs = Vec::new();
        for i in 0..20 {
            let email = format!("p{i}@example.com");
            seqs.push(app.deliver_now("created", "room-1", &email, "P").await);
        }
        seqs
    };
    let ((), seqs) = tokio::join!(flood, deliveries);
    let mut distinct = seqs.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 20, "every delivery recorded: {seqs:?}");
    app.stop().await;

    let log = access_log(&app.dir);
    assert!(log.len() <= 8, "a bounded number of lines: {log:#?}");
    let wrong = log
        .iter()
        .filter(|l| l["outcome"] == "wrong_password")
        .count();
    assert_eq!(wrong, 5, "the ones checked are each written");
    let summary = log
        .iter()
        .find(|l| l["outcome"] == "rate_limited" && l["count"].is_u64())
        .expect("a summary of the refused attempts");
    assert_eq!(summary["count"], 195, "{summary}");
    assert_eq!(summary["client"], "127.0.0.1");
    assert_eq!(summary["action"], "login");
    let export = bin::run(bin::rollcall(&app.dir).arg("export")).success();
    for i in 0..20 {
        assert!(
            export.stdout.contains(&format!(",p{i}@example.com,")),
            "p{i}"
        );
    }
}

#[tokio::test]
async fn a_removed_access_log_file_is_written_anew_and_verify_names_the_lost_lines() {
    let app = ConsoleApp::spawn().await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    let cookie = app.login().await;
    assert_eq!(app.get("/?person=alice", Some(&cookie)).await.0, 200);
    let files = access_files(&app.dir);
    assert_eq!(files.len(), 1);
    std::fs::remove_file(&files[0]).unwrap();

    assert_eq!(app.get("/?person=bob", Some(&cookie)).await.0, 200);
    let log = app.access_log();
    assert_eq!(log.len(), 1, "a new file with the search: {log:?}");
    assert_eq!(log[0]["filters"]["person"], "bob");
    let verify = bin::run(bin::rollcall(&app.dir).arg("verify")).code(1);
    assert!(
        verify.stdout.contains(&format!(
            "FAULT: {} line 1, seq 3: seqs 1 to 2 are missing",
            files[0].display()
        )),
        "{}",
        verify.report()
    );
}

#[tokio::test]
async fn an_edited_access_line_fails_verify_naming_its_file_and_line() {
    let mut app = ConsoleApp::spawn().await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    let cookie = app.login().await;
    app.get("/?person=alice", Some(&cookie)).await;
    app.get("/download?person=alice@example.com", Some(&cookie))
        .await;
    app.stop().await;
    let intact = bin::run(bin::rollcall(&app.dir).arg("verify")).success();
    assert!(
        intact
            .stdout
            .contains("console access log: 3 lines, chain intact"),
        "{}",
        intact.report()
    );

    let file = access_files(&app.dir).remove(0);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"person\":\"alice\""), "{text}");
    std::fs::write(
        &file,
        text.replacen("\"person\":\"alice\"", "\"person\":\"bob\"", 1),
    )
    .unwrap();
    let verify = bin::run(bin::rollcall(&app.dir).arg("verify")).code(1);
    assert!(
        verify
            .stdout
            .contains(&format!("FAULT: {} line 2, seq 2:", file.display())),
        "{}",
        verify.report()
    );
}

#[tokio::test]
async fn a_closed_access_log_day_is_shipped_to_the_bucket_with_the_archives() {
    let moto = Moto::start().await;
    let mut app = ConsoleApp::spawn().await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    let cookie = app.login().await;
    app.get("/?person=alice", Some(&cookie)).await;
    app.clock.advance(time::Duration::days(1));
    let cookie = app.login().await;
    app.get("/?person=bob", Some(&cookie)).await;
    app.stop().await;
    let files = access_files(&app.dir);
    assert_eq!(files.len(), 2, "one file a day: {files:?}");

    let mut archive = bin::rollcall(&app.dir);
    archive.arg("archive");
    moto.configure(&mut archive, "site-a");
    bin::run(&mut archive).success();
    let keys = moto.keys().await;
    // In the folder of the receiver, named after the host as serve named it.
    let closed = format!(
        "site-a/{}/access/console-2026-11-27.jsonl",
        rollcall::receiver::host_name()
    );
    assert!(keys.contains(&closed), "{keys:?}");
    assert!(
        !keys.iter().any(|k| k.ends_with("console-2026-11-28.jsonl")),
        "the open day stays: {keys:?}"
    );
    assert_eq!(moto.get(&closed).await, std::fs::read(&files[0]).unwrap());
}

#[tokio::test]
async fn a_damaged_last_access_line_does_not_keep_the_console_from_starting() {
    let app = ConsoleApp::spawn().await;
    app.login().await;
    let app = app
        .restart_with(|dir| {
            let file = access_files(dir).remove(0);
            let mut text = std::fs::read_to_string(&file).unwrap();
            text.push_str("{\"not\":\"a line\"}\n");
            std::fs::write(&file, text).unwrap();
        })
        .await;
    app.login().await;
    let verify = bin::run(bin::rollcall(&app.dir).arg("verify")).code(1);
    assert!(
        verify.stdout.contains(" line 2: not an access line"),
        "{}",
        verify.report()
    );
}

/// Turns a hang into a failure; never a measure of speed.
const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(30);

#[test]
fn downloads_nobody_reads_are_dropped_so_healthz_answers_and_the_server_stops() {
    // Few blocking threads, so a few downloads stuck on their browser
    // would hold them all.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (day, lines) = big_day_file();
    runtime.block_on(async {
        let mut app = ConsoleApp::spawn_configured(|settings| {
            std::fs::create_dir_all(&settings.dir).unwrap();
            std::fs::write(settings.dir.join(&day), &lines).unwrap();
            let console = settings.console.as_mut().unwrap();
            console.download_stall = std::time::Duration::from_millis(200);
        })
        .await;
        let cookie = app.login().await;
        let address = app.console.trim_start_matches("http://").to_string();
        let mut unread = Vec::new();
        for _ in 0..4 {
            let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
            let request = format!("GET /download HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n");
            tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
                .await
                .unwrap();
            unread.push(stream);
        }
        let health = app
            .client
            .get(format!("{}/healthz", app.hooks))
            .timeout(HANG_GUARD)
            .send()
            .await
            .expect("/healthz answers while downloads go unread");
        assert_eq!(health.status(), 200);
        tokio::time::timeout(HANG_GUARD, app.stop())
            .await
            .expect("the server stops while downloads go unread");
        drop(unread);
    });
}

/// A day file far larger than the socket buffers, as (name, contents):
/// one small log's lines over and over (the export reads lines; it does
/// not check the chain).
fn big_day_file() -> (std::ffi::OsString, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut small = crate::support::logs::TestLog::new();
    rt.block_on(async {
        for _ in 0..3 {
            small
                .append(small.member(rollcall::log::record::Event::Joined))
                .await;
        }
    });
    small.close();
    let day = small.day_file(&small.date_name());
    let lines = std::fs::read_to_string(&day).unwrap();
    (day.file_name().unwrap().to_owned(), lines.repeat(8_000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_or_download_never_shows_a_failed_batch_and_shows_the_real_record_that_reuses_its_seq()
 {
    let disk = std::sync::Arc::new(crate::support::disk::FaultyDisk::default());
    let app = ConsoleApp::spawn_configured({
        let disk = disk.clone();
        move |settings| settings.disk = disk
    })
    .await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    let cookie = app.login().await;
    let release = disk.hold_next_sync();
    let failing = app.try_deliver("created", "room-1", "bob@example.com", "Bob Builder");
    let meanwhile = async {
        // Bob's line is written, its fdatasync held: not durable yet.
        let deadline = std::time::Instant::now() + HANG_GUARD;
        while !day_files_hold(&app.dir, "Bob Builder") {
            assert!(std::time::Instant::now() < deadline, "the write never came");
            tokio::task::yield_now().await;
        }
        let (_, _, page) = app.get("/?person=bob", Some(&cookie)).await;
        let (_, _, csv) = app
            .get("/download?person=bob@example.com", Some(&cookie))
            .await;
        release.send(true).unwrap();
        (page, csv)
    };
    let (failed, (page, csv)) = tokio::join!(failing, meanwhile);
    assert!(
        !page.contains("Bob Builder"),
        "not durable, not shown: {page}"
    );
    assert!(
        csv.starts_with("seq,") && !csv.contains("Bob Builder"),
        "not durable, not downloaded: {csv}"
    );
    assert_eq!(failed.status(), 503, "the batch failed and was cut off");
    let seq = app
        .deliver("created", "room-1", "carol@example.com", "Carol Singer")
        .await;
    let (_, _, page) = app.get("/?person=carol", Some(&cookie)).await;
    assert!(page.contains("Carol Singer"), "{page}");
    assert!(page.contains(&format!(">{seq}<")), "{page}");
    let (_, _, page) = app.get("/?person=bob", Some(&cookie)).await;
    assert!(!page.contains("Bob Builder"), "{page}");
}

fn day_files_hold(dir: &std::path::Path, text: &str) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let path = entry.unwrap().path();
        path.extension().is_some_and(|e| e == "jsonl")
            && std::fs::read_to_string(&path).unwrap().contains(text)
    })
}
