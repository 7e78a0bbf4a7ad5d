//! Reading the store's XML answers by element name. S3-compatible stores
//! differ in namespaces and in which optional elements they send, and
//! rollcall needs a few flat fields of each answer; a schema-bound parser
//! would refuse answers it need not understand.

/// The raw contents of every `<name>...</name>` element, in order.
pub fn elements<'a>(body: &'a str, name: &str) -> Vec<&'a str> {
    elements_named(body, &[name])
        .into_iter()
        .map(|(_, inner)| inner)
        .collect()
}

/// The raw contents of every element named one of `names`, in document
/// order, each with the index of its name in `names`.
pub fn elements_named<'a>(body: &'a str, names: &[&str]) -> Vec<(usize, &'a str)> {
    let tags: Vec<_> = names
        .iter()
        .map(|name| (format!("<{name}>"), format!("</{name}>")))
        .collect();
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let next = tags
            .iter()
            .enumerate()
            .filter_map(|(n, (open, _))| rest.find(open.as_str()).map(|at| (at, n)))
            .min();
        let Some((start, n)) = next else {
            break;
        };
        let (open, close) = &tags[n];
        let inner = &rest[start + open.len()..];
        let Some(end) = inner.find(close.as_str()) else {
            break;
        };
        out.push((n, &inner[..end]));
        rest = &inner[end + close.len()..];
    }
    out
}

/// The text of the first `<name>` element, its entities decoded.
pub fn text(body: &str, name: &str) -> Option<String> {
    elements(body, name).first().map(|raw| unescape(raw))
}

fn unescape(raw: &str) -> String {
    raw.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_found_by_name_whatever_the_namespace() {
        let body = r#"<R xmlns="x"><V><K>a&amp;b</K></V><V><K>c</K></V><E/></R>"#;
        let versions = elements(body, "V");
        assert_eq!(versions.len(), 2);
        assert_eq!(text(versions[0], "K").as_deref(), Some("a&b"));
        assert_eq!(text(versions[1], "K").as_deref(), Some("c"));
        assert_eq!(text(body, "E"), None);
    }

    #[test]
    fn elements_of_several_names_keep_their_order() {
        let body = "<A>1</A><B>2</B><A>3</A>";
        assert_eq!(
            elements_named(body, &["A", "B"]),
            vec![(0, "1"), (1, "2"), (0, "3")]
        );
    }
}
