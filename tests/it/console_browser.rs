//! The console in a real browser (headless Chromium through WebDriver):
//! a wrong password, the login, a search, markup in a display name, a
//! room's roster and the CSV download, as a compliance officer would go
//! through them. Also makes the README's screenshot.

use std::path::PathBuf;

use crate::support::bin;
use crate::support::browser::Browser;
use crate::support::console::{ConsoleApp, PASSWORD};

/// Markup in a display name that would run if it were not escaped.
const XSS_NAME: &str = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">";

#[tokio::test]
async fn a_compliance_officer_logs_in_searches_checks_a_roster_and_downloads_in_a_browser() {
    let app = ConsoleApp::spawn().await;
    app.deliver("created", "room-1", "alice@example.com", "Alice Liddell")
        .await;
    app.deliver("created", "room-1", "bob@example.com", "Bob Builder")
        .await;
    app.deliver("created", "room-2", "alice@example.com", "Alice Liddell")
        .await;
    app.deliver("created", "room-1", "mallory@example.com", XSS_NAME)
        .await;
    app.deliver("deleted", "room-1", "bob@example.com", "Bob Builder")
        .await;
    let browser = Browser::start().await;
    let console = &app.console;

    browser.goto(&format!("{console}/")).await;
    assert_eq!(
        browser.url().await,
        format!("{console}/login"),
        "no session: the login form"
    );
    browser.type_into("#password", "not the password").await;
    browser.submit("form.login button").await;
    assert!(browser.text("p.error").await.contains("Wrong password"));

    browser.type_into("#password", PASSWORD).await;
    browser.submit("form.login button").await;
    assert_eq!(browser.url().await, format!("{console}/"), "logged in");

    browser.type_into("input[name=person]", "liddell").await;
    browser.submit("form.search button").await;
    assert!(browser.text("p.summary").await.starts_with("2 records"));
    let rows = browser.text("table.records").await;
    assert!(
        rows.contains("alice@example.com") && !rows.contains("bob@example.com"),
        "{rows}"
    );

    browser.type_into("input[name=person]", "mallory").await;
    browser.submit("form.search button").await;
    let rows = browser.text("table.records").await;
    assert!(
        rows.contains("<script>window.__xss=1</script>"),
        "shown as text: {rows}"
    );
    let ran = browser
        .run("return window.__xss === undefined ? 'no' : 'yes'")
        .await;
    assert_eq!(ran, "no", "the display name's markup did not run");

    browser.goto(&format!("{console}/room?id=room-1")).await;
    let roster = browser.text("table.roster").await;
    assert!(roster.contains("alice@example.com") && roster.contains("mallory@example.com"));
    assert!(!roster.contains("bob@example.com"), "Bob left: {roster}");
    browser
        .type_into("input[name=at]", "2026-11-27T12:02:30Z")
        .await;
    browser.submit("form.at button").await;
    let roster = browser.text("table.roster").await;
    assert!(
        roster.contains("bob@example.com"),
        "Bob was there then: {roster}"
    );
    assert!(
        !roster.contains("mallory@example.com"),
        "Mallory came later: {roster}"
    );

    browser
        .goto(&format!("{console}/?person=alice@example.com"))
        .await;
    browser.click("#download").await;
    let csv = browser.downloaded("rollcall-export.csv").await;
    let export = bin::run(
        bin::rollcall(&app.dir)
            .arg("export")
            .args(["--person", "alice@example.com"]),
    )
    .success();
    assert_eq!(csv, export.stdout, "the download is the export");

    browser.goto(&format!("{console}/")).await;
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    // `ROLLCALL_UPDATE_SCREENSHOT=1 cargo test console_browser` refreshes
    // the README's picture.
    if std::env::var_os("ROLLCALL_UPDATE_SCREENSHOT").is_some() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/console-search.png");
        std::fs::write(&path, &png).expect("writing the screenshot");
    }
    browser.quit().await;
    let searches = app
        .access_log()
        .iter()
        .filter(|l| l["action"] == "search")
        .count();
    assert!(
        searches >= 3,
        "the browser's searches are in the access log"
    );
}
