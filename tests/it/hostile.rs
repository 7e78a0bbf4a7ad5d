//! Hostile and strange input: malformed deliveries get the contract's 4xx
//! and write nothing; valid but strange values are recorded faithfully; the
//! server never panics and keeps answering.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::app::{TestApp, json_of, membership};

/// Turns a hang into a failure; never a measure of speed.
const HANG_GUARD: Duration = Duration::from_secs(30);

async fn still_answers(app: &TestApp) {
    let health = tokio::time::timeout(
        HANG_GUARD,
        app.client.get(format!("{}/healthz", app.address)).send(),
    )
    .await
    .expect("the server never answered")
    .expect("the server still answers");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn malformed_bodies_get_400_and_write_nothing() {
    let app = TestApp::spawn().await;
    let nested = format!(
        r#"{{"resource":"memberships","event":"created","data":{}1{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let cases: Vec<Vec<u8>> = vec![
        b"{\"resource\":\"memberships\",\"event\":\"created\",\"data\":{\"id\":\"\xff\xfe\"}}".to_vec(),
        br#"{"resource":"memberships","event":"created","data":{"id":"m","roomId":"r","pers"#.to_vec(),
        nested[..60_000].to_string().into_bytes(),
        br#"{"resource":"memberships","event":5,"data":{}}"#.to_vec(),
        br#"{"resource":"memberships","event":"created","data":{"id":7,"roomId":"r","personId":"p"}}"#.to_vec(),
        br#"{"resource":"memberships","event":"created","data":"just a string"}"#.to_vec(),
        br#"[1,2,3]"#.to_vec(),
        b"".to_vec(),
    ];
    for body in &cases {
        let (status, answer) = json_of(app.deliver("default", body).await).await;
        assert_eq!(
            status,
            400,
            "{}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        );
        assert!(answer["error"].is_string());
    }
    assert!(app.records().is_empty());
    still_answers(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_signature_of_the_wrong_length_is_401() {
    let app = TestApp::spawn().await;
    let body = membership("created", "m", "r", "2026-11-27T01:00:00.000Z");
    for sig in [
        "00",
        &"0".repeat(41),
        &"a".repeat(4000),
        "zz".repeat(20).as_str(),
    ] {
        let (status, _) = json_of(app.post("default", &body, Some(sig)).await).await;
        assert_eq!(status, 401);
    }
    assert!(app.records().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn strange_but_valid_values_are_recorded_faithfully_one_line_each() {
    let app = TestApp::spawn().await;
    let names = [
        "NUL\u{0}inside",
        "bell\u{7} tab\t cr\r lf\n end",
        "\u{202E}right-to-left\u{202C} mark",
        "=HYPERLINK(\"http://x\")",
        "quote \" backslash \\ comma ,",
        &"long".repeat(2_500),
    ];
    for (i, name) in names.iter().enumerate() {
        let mut body: Value = serde_json::from_slice(&membership(
            "created",
            &format!("m{i}"),
            "r",
            "2026-11-27T01:00:00.000Z",
        ))
        .unwrap();
        body["data"]["personDisplayName"] = json!(name);
        body["data"]["personEmail"] = json!(format!("{name}@example.com"));
        let (status, answer) = json_of(
            app.deliver("default", &serde_json::to_vec(&body).unwrap())
                .await,
        )
        .await;
        assert_eq!(
            (status, &answer["status"]),
            (200, &"recorded".into()),
            "{name:?}"
        );
    }
    let text = std::fs::read_to_string(app.dir.join("2026-11-27.jsonl")).unwrap();
    assert_eq!(
        text.lines().count(),
        1 + names.len(),
        "each record stays one line, after the start record"
    );
    for (record, name) in app.records().iter().zip(names) {
        assert_eq!(record["person_display_name"], name);
        assert_eq!(record["person_email"], format!("{name}@example.com"));
    }
    app.stop().await;
}

#[tokio::test]
async fn oversized_headers_are_refused_and_the_server_keeps_answering() {
    let app = TestApp::spawn().await;
    let body = membership("created", "m", "r", "2026-11-27T01:00:00.000Z");
    let answer = app
        .client
        .post(format!("{}/hooks/default", app.address))
        .header("x-padding", "p".repeat(1 << 20))
        .body(body)
        .send()
        .await;
    if let Ok(answer) = answer {
        assert_eq!(answer.status(), 431);
    }
    assert!(app.records().is_empty());
    still_answers(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_stalls_mid_headers_is_cut_off_and_others_are_served() {
    let app = TestApp::spawn_with(|s| s.header_read_timeout = Duration::from_millis(300)).await;
    let address = app.address.trim_start_matches("http://").to_string();
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    stalled
        .write_all(b"POST /hooks/default HTTP/1.1\r\nHost: x\r\nX-Sl")
        .await
        .unwrap();
    still_answers(&app).await;
    // The server closes the stalled connection by itself (the bound only
    // turns a hang into a failure).
    let mut rest = Vec::new();
    tokio::time::timeout(HANG_GUARD, stalled.read_to_end(&mut rest))
        .await
        .expect("the stalled connection was never closed")
        .ok();
    assert!(!String::from_utf8_lossy(&rest).contains("200 OK"));
    app.stop().await;
}

#[tokio::test]
async fn idle_connections_beyond_the_limit_do_not_stop_new_clients_for_long() {
    let app = TestApp::spawn_with(|s| {
        s.max_connections = 8;
        s.header_read_timeout = Duration::from_millis(300);
    })
    .await;
    let address = app.address.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..64 {
        idle.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    // Idle connections are cut at the header timeout, so a new client is
    // answered even though the first 8 took every slot.
    still_answers(&app).await;
    drop(idle);
    app.stop().await;
}

#[tokio::test]
async fn a_chunked_body_without_length_is_cut_off_at_64_kib() {
    let app = TestApp::spawn().await;
    let answer = app.post_chunked_past_the_limit().await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(app.records().is_empty());
    app.stop().await;
}
