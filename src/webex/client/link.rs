//! The `Link` header of a paged Webex answer: where its `rel="next"` leads.

use reqwest::header::{HeaderMap, LINK};

/// The `rel="next"` target of the `Link` headers, if any, as written
/// (maybe relative to the page's URL).
pub(super) fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(links)
        .find(|link| {
            link.params.iter().any(|(name, value)| {
                name.eq_ignore_ascii_case("rel")
                    && value
                        .split_ascii_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            })
        })
        .map(|link| link.target.to_string())
}

/// One entry of a `Link` header: `<target>; name=value; ...`.
#[derive(Debug, PartialEq)]
struct Link<'a> {
    target: &'a str,
    /// Names as written, values unquoted.
    params: Vec<(&'a str, String)>,
}

/// The entries of one `Link` header value (RFC 8288, section 3). A comma
/// separates entries only outside `<...>` and quoted strings, since a
/// target's query (a paging cursor) may hold one. An entry that does not
/// start with `<` is skipped up to the next comma. No crate in the tree
/// parses `Link`, and this is all of the grammar the API uses.
fn links(value: &str) -> Vec<Link<'_>> {
    let mut found = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return found;
        }
        let Some((target, after)) = rest
            .strip_prefix('<')
            .and_then(|inner| inner.split_once('>'))
        else {
            match rest.find(',') {
                Some(comma) => {
                    rest = &rest[comma..];
                    continue;
                }
                None => return found,
            }
        };
        rest = after;
        let mut params = Vec::new();
        while let Some(after) = rest.trim_start().strip_prefix(';') {
            let (param, after) = link_param(after);
            params.extend(param);
            rest = after;
        }
        found.push(Link { target, params });
    }
}

/// One `name[=value]` after a `;`, and what follows it. The value is a
/// token or a quoted string, whose `\` escapes are undone.
fn link_param(text: &str) -> (Option<(&str, String)>, &str) {
    let end = text.find([';', ',', '=']).unwrap_or(text.len());
    let name = text[..end].trim();
    let rest = &text[end..];
    let Some(value) = rest.strip_prefix('=').map(str::trim_start) else {
        return ((!name.is_empty()).then(|| (name, String::new())), rest);
    };
    if let Some(quoted) = value.strip_prefix('"') {
        let mut unquoted = String::new();
        let mut chars = quoted.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => return (Some((name, unquoted)), &quoted[at + 1..]),
                '\\' => unquoted.extend(chars.next().map(|(_, c)| c)),
                c => unquoted.push(c),
            }
        }
        return (Some((name, unquoted)), "");
    }
    let end = value
        .find(|c: char| c == ';' || c == ',' || c.is_ascii_whitespace())
        .unwrap_or(value.len());
    (Some((name, value[..end].to_string())), &value[end..])
}

/// A header map holding one `Link: value`.
#[cfg(test)]
pub(super) fn header(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(LINK, value.parse().expect("a test Link header is valid"));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(value: &str) -> HeaderMap {
        header(value)
    }

    #[test]
    fn the_next_link_is_found_among_others() {
        let headers = link(
            r#"<https://x/v1/webhooks?max=2&cursor=a>; rel="prev", <https://x/v1/webhooks?max=2&cursor=b>; rel="next""#,
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://x/v1/webhooks?max=2&cursor=b")
        );
        assert_eq!(next_link(&link(r#"<https://x/a>; rel="first""#)), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn a_comma_inside_a_link_target_or_quoted_parameter_does_not_split_the_entry() {
        let headers = link(
            r#"<https://x/v1/webhooks?cursor=a,b>; title="one, two"; rel="next", <https://x/v1/webhooks?cursor=c,d>; rel=prev"#,
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://x/v1/webhooks?cursor=a,b")
        );
        assert_eq!(
            links(r#"<a,b>; title="one, \"two\""; rel="next", <c>; rel=prev"#),
            [
                Link {
                    target: "a,b",
                    params: vec![("title", r#"one, "two""#.into()), ("rel", "next".into())],
                },
                Link {
                    target: "c",
                    params: vec![("rel", "prev".into())],
                },
            ]
        );
    }

    #[test]
    fn next_is_found_among_several_relations_in_any_case_and_after_a_malformed_entry() {
        assert_eq!(
            next_link(&link(r#"<https://x/a>; rel="last NEXT""#)).as_deref(),
            Some("https://x/a")
        );
        assert_eq!(
            next_link(&link(r#"garbage; rel="next", <https://x/b>; REL=next"#)).as_deref(),
            Some("https://x/b")
        );
        assert_eq!(next_link(&link(r#"<https://x/c; rel="next""#)), None);
        assert_eq!(next_link(&link(r#"<https://x/d>; rel="nextpage""#)), None);
    }
}
