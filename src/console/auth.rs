//! Who may see the console: the password, sessions (an `HttpOnly`,
//! `SameSite=Strict` cookie that expires when idle), each session's CSRF
//! token, the limit on failed logins per client address, and which peers
//! are trusted as a sign-on proxy.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ipnet::IpNet;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::clock::Clock;
use crate::secret::{self, Secret, SecretSource};

/// The session cookie's name.
pub const COOKIE: &str = "rollcall_console";
/// Where a generated console password is kept.
pub const PASSWORD_FILE: &str = ".console-password";
/// A session unused this long is gone.
pub const IDLE: Duration = Duration::hours(8);
/// Failed logins allowed per client address in [`FAILURE_WINDOW`].
pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW: Duration = Duration::minutes(1);
/// Proxy-signed-in users kept at once. Each one is a name a trusted proxy
/// sent, so the map is only as big as the organisation's officers; the
/// bound keeps a misbehaving proxy from growing it without end (the
/// oldest is dropped, and simply gets a new session and CSRF token).
pub const MAX_PROXIED: usize = 1024;

/// The peers trusted as a sign-on proxy when none are configured.
pub fn loopback() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .map(|net| net.parse().expect("a well-formed network"))
        .collect()
}

/// The console password: `ROLLCALL_CONSOLE_PASSWORD` (read from the
/// environment only, like the webhook secret), else `DIR/.console-password`,
/// generated with mode 0600 on first start. Logs where it came from,
/// never the value.
pub fn password(dir: &Path, from_env: Option<Secret>) -> anyhow::Result<Secret> {
    let (password, source) = secret::secret_in(dir, PASSWORD_FILE, from_env)?;
    match source {
        SecretSource::Environment => {
            tracing::info!("console password from ROLLCALL_CONSOLE_PASSWORD")
        }
        SecretSource::File(path) => {
            tracing::info!(file = %path.display(), "console password from file")
        }
        SecretSource::Generated(path) => tracing::info!(
            file = %path.display(),
            "generated a console password (mode 0600): read it from that file to log in"
        ),
    }
    Ok(password)
}

/// `ROLLCALL_CONSOLE_PASSWORD`, if set.
pub fn password_from_env() -> Option<Secret> {
    std::env::var("ROLLCALL_CONSOLE_PASSWORD")
        .ok()
        .filter(|v| !v.is_empty())
        .map(Secret::new)
}

/// A logged-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// A short name for the session, safe to write in the access log
    /// (the cookie's value is not).
    pub id: String,
    /// Every POST form of the session carries it.
    pub csrf: String,
    last_seen: OffsetDateTime,
}

/// Who a request is from, as far as the console can tell.
#[derive(Debug)]
pub enum Visitor {
    Signed(Session),
    /// No proxy user and no live session cookie.
    Anonymous,
    /// It names a user in the proxy header but does not come from a
    /// trusted proxy: not signed in, and worth noting.
    UntrustedHeader,
}

impl Visitor {
    pub fn session(self) -> Option<Session> {
        match self {
            Visitor::Signed(session) => Some(session),
            Visitor::Anonymous | Visitor::UntrustedHeader => None,
        }
    }
}

/// What a login attempt came to.
#[derive(Debug)]
pub enum Login {
    /// The cookie value of the new session, and its name.
    Allowed {
        token: String,
        session: String,
    },
    Wrong,
    /// Too many failures from this address: try again after this long.
    Limited(Duration),
}

pub struct Auth {
    password: Secret,
    /// The console itself is served over TLS: every cookie is `Secure`.
    tls: bool,
    /// Peers whose proxy header and `X-Forwarded-Proto` are believed.
    trusted: Vec<IpNet>,
    clock: Arc<dyn Clock>,
    sessions: Mutex<HashMap<String, Session>>,
    /// The header a single sign-on proxy names its signed-in user in, if
    /// the console trusts one; and each such user's session.
    proxy_header: Option<String>,
    proxied: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, VecDeque<OffsetDateTime>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Auth {
    /// `tls`: the console itself is served over HTTPS.
    pub fn new(password: Secret, tls: bool, clock: Arc<dyn Clock>) -> Self {
        Self {
            password,
            tls,
            trusted: loopback(),
            clock,
            sessions: Mutex::default(),
            failures: Mutex::default(),
            proxy_header: None,
            proxied: Mutex::default(),
        }
    }

    /// Trusts a single sign-on proxy's `header` (e.g. oauth2-proxy's
    /// `X-Forwarded-Email`) as who is signed in, from peers in `proxies`
    /// only (none given: loopback).
    pub fn trusting(mut self, header: Option<String>, proxies: &[IpNet]) -> Self {
        self.proxy_header = header.map(|h| h.to_ascii_lowercase());
        if !proxies.is_empty() {
            self.trusted = proxies.to_vec();
        }
        self
    }

    /// Whether `peer` is a trusted proxy. An IPv4 peer on a dual-stack
    /// socket shows as `::ffff:a.b.c.d`; it is matched as IPv4.
    pub fn is_trusted(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|ip| {
            let ip = ip.to_canonical();
            self.trusted.iter().any(|net| net.contains(&ip))
        })
    }

    /// Who sent a request from `peer`: the proxy's user when the console
    /// trusts a proxy header, the request has it and `peer` is a trusted
    /// proxy; else the session its cookie names. The header from anyone
    /// else signs nobody in: whoever reaches the port could write it.
    pub fn visitor(&self, headers: &warp::http::HeaderMap, peer: Option<IpAddr>) -> Visitor {
        let user = match self
            .proxy_header
            .as_deref()
            .map(|name| only_value(headers, name))
        {
            // Sent twice: a proxy that appends its header to the client's
            // would let the client's own value through.
            Some(Err(Twice)) => return Visitor::UntrustedHeader,
            Some(Ok(value)) => value.filter(|v| !v.is_empty()),
            None => None,
        };
        match user {
            Some(_) if !self.is_trusted(peer) => Visitor::UntrustedHeader,
            Some(user) => Visitor::Signed(self.proxied(user)),
            None => match self.session(cookie_header(headers)) {
                Some(session) => Visitor::Signed(session),
                None => Visitor::Anonymous,
            },
        }
    }

    /// Whether the browser reached the console over HTTPS: the console
    /// serves TLS itself, or a trusted proxy says so in
    /// `X-Forwarded-Proto` (from anyone else the header means nothing).
    pub fn over_https(&self, headers: &warp::http::HeaderMap, peer: Option<IpAddr>) -> bool {
        self.tls
            || (self.is_trusted(peer)
                && only_value(headers, "x-forwarded-proto")
                    .ok()
                    .flatten()
                    .is_some_and(|proto| proto.eq_ignore_ascii_case("https")))
    }

    /// The proxy-signed-in `user`'s session: one per user, so its CSRF
    /// token stays the same across their requests, and named after them
    /// in the access log.
    fn proxied(&self, user: &str) -> Session {
        let now = self.clock.now();
        let mut proxied = lock(&self.proxied);
        if !proxied.contains_key(user) && proxied.len() >= MAX_PROXIED {
            proxied.retain(|_, s| now - s.last_seen < IDLE);
            let oldest = proxied
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(name, _)| name.clone());
            if let Some(oldest) = oldest.filter(|_| proxied.len() >= MAX_PROXIED) {
                proxied.remove(&oldest);
            }
        }
        let session = proxied.entry(user.to_string()).or_insert_with(|| Session {
            id: format!("proxy:{user}"),
            csrf: random_hex(),
            last_seen: now,
        });
        session.last_seen = now;
        session.clone()
    }

    /// Checks `given` from `client`; past [`MAX_FAILURES`] failures in a
    /// minute, the address is refused without a check.
    pub fn login(&self, client: Option<IpAddr>, given: &str) -> Login {
        let now = self.clock.now();
        if let Some(client) = client {
            let mut failures = lock(&self.failures);
            let recent = failures.entry(client).or_default();
            while recent.front().is_some_and(|&at| now - at >= FAILURE_WINDOW) {
                recent.pop_front();
            }
            if recent.len() >= MAX_FAILURES {
                let oldest = recent.front().copied().unwrap_or(now);
                return Login::Limited(FAILURE_WINDOW - (now - oldest));
            }
        }
        if !same_secret(given, self.password.expose()) {
            if let Some(client) = client {
                lock(&self.failures)
                    .entry(client)
                    .or_default()
                    .push_back(now);
            }
            return Login::Wrong;
        }
        let token = random_hex();
        let session = Session {
            id: short_name(&token),
            csrf: random_hex(),
            last_seen: now,
        };
        let name = session.id.clone();
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| now - s.last_seen < IDLE);
        sessions.insert(token.clone(), session);
        Login::Allowed {
            token,
            session: name,
        }
    }

    /// The session the cookie header names, if it is live; using it keeps
    /// it live.
    pub fn session(&self, cookies: Option<&str>) -> Option<Session> {
        let token = cookie_value(cookies?, COOKIE)?;
        let now = self.clock.now();
        let mut sessions = lock(&self.sessions);
        let session = sessions.get_mut(token)?;
        if now - session.last_seen >= IDLE {
            sessions.remove(token);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    /// Ends the session the cookie header names.
    pub fn logout(&self, cookies: Option<&str>) {
        if let Some(token) = cookies.and_then(|c| cookie_value(c, COOKIE)) {
            lock(&self.sessions).remove(token);
        }
    }

    /// The `Set-Cookie` value that starts a session, or keeps a used one
    /// from expiring in the browser; `secure` when the browser came over
    /// HTTPS ([`Auth::over_https`]).
    pub fn set_cookie(&self, token: &str, secure: bool) -> String {
        format!(
            "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            IDLE.whole_seconds(),
            if secure { "; Secure" } else { "" }
        )
    }

    /// The cookie that renews the session a request's cookie names, if it
    /// is live: each use moves the browser's expiry [`IDLE`] ahead, as it
    /// does the session's.
    pub fn renewed_cookie(&self, headers: &warp::http::HeaderMap, secure: bool) -> Option<String> {
        let token = cookie_value(cookie_header(headers)?, COOKIE)?;
        let live = lock(&self.sessions)
            .get(token)
            .is_some_and(|s| self.clock.now() - s.last_seen < IDLE);
        live.then(|| self.set_cookie(token, secure))
    }

    /// The `Set-Cookie` value that removes it.
    pub fn clear_cookie(&self, secure: bool) -> String {
        format!(
            "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if secure { "; Secure" } else { "" }
        )
    }
}

/// Compares in time that does not depend on where the two differ: both
/// are hashed first, so neither length nor content leaks.
fn same_secret(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Compares a form's CSRF token with the session's, the same way.
pub fn same_token(given: &str, expected: &str) -> bool {
    same_secret(given, expected)
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    // Without randomness no session can be made safely; the process has
    // bigger problems then, and a zero token would be guessable.
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    hex::encode(bytes)
}

fn short_name(token: &str) -> String {
    hex::encode(&Sha256::digest(token.as_bytes())[..6])
}

/// A header sent more than once where one value is expected.
struct Twice;

/// The one value of header `name`, trimmed (none when absent or not
/// text); [`Twice`] when it comes more than once.
fn only_value<'h>(
    headers: &'h warp::http::HeaderMap,
    name: &str,
) -> Result<Option<&'h str>, Twice> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(Twice);
    }
    Ok(first.and_then(|v| v.to_str().ok()).map(str::trim))
}

fn cookie_header(headers: &warp::http::HeaderMap) -> Option<&str> {
    headers
        .get(warp::http::header::COOKIE)
        .and_then(|c| c.to_str().ok())
}

/// The value of cookie `name` in a `Cookie` header.
fn cookie_value<'c>(header: &'c str, name: &str) -> Option<&'c str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use time::macros::datetime;

    fn auth(clock: Arc<FakeClock>) -> Auth {
        Auth::new(Secret::new("right".into()), false, clock)
    }

    #[test]
    fn a_session_lasts_while_used_and_ends_when_idle_or_logged_out() {
        let clock = Arc::new(FakeClock::new(datetime!(2026-11-27 12:00 UTC)));
        let auth = auth(clock.clone());
        let Login::Allowed { token, .. } = auth.login(None, "right") else {
            panic!("the right password is allowed");
        };
        let cookie = format!("other=1; {COOKIE}={token}");
        clock.advance(IDLE - Duration::minutes(1));
        assert!(auth.session(Some(&cookie)).is_some());
        clock.advance(IDLE - Duration::minutes(1));
        assert!(auth.session(Some(&cookie)).is_some(), "use keeps it live");
        clock.advance(IDLE);
        assert!(auth.session(Some(&cookie)).is_none(), "idle too long");
        let Login::Allowed { token, .. } = auth.login(None, "right") else {
            panic!("the right password is allowed");
        };
        let cookie = format!("{COOKIE}={token}");
        auth.logout(Some(&cookie));
        assert!(auth.session(Some(&cookie)).is_none());
    }

    #[test]
    fn failed_logins_are_limited_per_address_for_a_minute() {
        let clock = Arc::new(FakeClock::new(datetime!(2026-11-27 12:00 UTC)));
        let auth = auth(clock.clone());
        let here: IpAddr = "10.0.0.1".parse().unwrap();
        let there: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(matches!(auth.login(Some(here), "wrong"), Login::Wrong));
        }
        assert!(matches!(auth.login(Some(here), "right"), Login::Limited(_)));
        assert!(matches!(
            auth.login(Some(there), "right"),
            Login::Allowed { .. }
        ));
        clock.advance(FAILURE_WINDOW);
        assert!(matches!(
            auth.login(Some(here), "right"),
            Login::Allowed { .. }
        ));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let clock = Arc::new(FakeClock::new(datetime!(2026-11-27 12:00 UTC)));
        let plain = auth(clock.clone()).set_cookie("t", false);
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        let https = auth(clock).set_cookie("t", true);
        assert!(https.ends_with("; Secure"));
    }

    #[test]
    fn the_proxied_users_are_bounded_dropping_the_oldest() {
        let clock = Arc::new(FakeClock::new(datetime!(2026-11-27 12:00 UTC)));
        let auth = auth(clock.clone()).trusting(Some("X-User".into()), &[]);
        let loopback = Some("127.0.0.1".parse().unwrap());
        let mut headers = warp::http::HeaderMap::new();
        for n in 0..=MAX_PROXIED {
            headers.insert("x-user", format!("u{n}").parse().unwrap());
            assert!(matches!(
                auth.visitor(&headers, loopback),
                Visitor::Signed(_)
            ));
            clock.advance(Duration::seconds(1));
        }
        let proxied = lock(&auth.proxied);
        assert_eq!(proxied.len(), MAX_PROXIED);
        assert!(!proxied.contains_key("u0") && proxied.contains_key("u1"));
    }
}
