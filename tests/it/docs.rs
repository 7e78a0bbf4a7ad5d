//! The docs can be walked: every relative link in README.md and docs/*.md
//! names a file that exists, and every `#anchor` names a heading there, by
//! the slugs GitHub gives headings.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd};

/// What the check needs from one page: its headings' anchors and the
/// destinations of its links and images.
struct Page {
    anchors: Vec<String>,
    links: Vec<String>,
}

/// What a walk over the docs found.
struct Walk {
    links_checked: usize,
    problems: Vec<String>,
}

/// Parsed as GitHub renders it, so a link written inside a code span or a
/// code block is text, not a link.
fn parse(markdown: &str) -> Page {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let mut page = Page {
        anchors: Vec::new(),
        links: Vec::new(),
    };
    let mut occurrences = HashMap::new();
    let mut heading: Option<String> = None;
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => {
                if let Some(text) = heading.take() {
                    page.anchors.push(unique(slug(&text), &mut occurrences));
                }
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some(heading) = heading.as_mut() {
                    heading.push_str(&text);
                }
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                ..
            }) if !matches!(link_type, LinkType::Autolink | LinkType::Email) => {
                page.links.push(dest_url.into_string());
            }
            Event::Start(Tag::Image { dest_url, .. }) => page.links.push(dest_url.into_string()),
            _ => {}
        }
    }
    page
}

/// GitHub's heading slug: lowercase, each space a `-`, every other
/// character that is not a letter, digit, `-` or `_` dropped.
fn slug(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// A repeated heading gets `-1`, `-2`, ... as GitHub numbers them.
fn unique(slug: String, occurrences: &mut HashMap<String, usize>) -> String {
    let mut result = slug.clone();
    while occurrences.contains_key(&result) {
        let count = occurrences.entry(slug.clone()).or_default();
        *count += 1;
        result = format!("{slug}-{count}");
    }
    occurrences.insert(result.clone(), 0);
    result
}

/// A destination with a scheme (`https:`, `mailto:`) leaves the repository.
fn is_external(dest: &str) -> bool {
    dest.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// README.md and every docs/*.md under `root`, in name order.
fn pages(root: &Path) -> Vec<PathBuf> {
    let docs = root.join("docs");
    let mut pages: Vec<PathBuf> = fs::read_dir(&docs)
        .unwrap_or_else(|e| panic!("listing {}: {e}", docs.display()))
        .map(|entry| entry.expect("reading docs/").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    pages.insert(0, root.join("README.md"));
    pages
        .into_iter()
        .map(|page| page.canonicalize().expect("a page that was listed"))
        .collect()
}

/// Every relative link of every page, checked against the files under
/// `root` and the headings of the pages they name.
fn walk(root: &Path) -> Walk {
    let root = root.canonicalize().expect("the docs' root");
    let name = |path: &Path| {
        path.strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let mut anchors: HashMap<PathBuf, Vec<String>> = HashMap::new();
    let mut walk = Walk {
        links_checked: 0,
        problems: Vec::new(),
    };
    for page in pages(&root) {
        let parsed = parse(&read(&page));
        anchors.insert(page.clone(), parsed.anchors);
        for dest in parsed.links.iter().filter(|dest| !is_external(dest)) {
            walk.links_checked += 1;
            let (path, anchor) = match dest.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (dest.as_str(), None),
            };
            let target = match path {
                "" => page.clone(),
                // GitHub resolves a leading `/` from the repository's root.
                absolute if absolute.starts_with('/') => root.join(&absolute[1..]),
                relative => page.parent().expect("a page's directory").join(relative),
            };
            let Ok(target) = target.canonicalize() else {
                walk.problems
                    .push(format!("{}: link `{dest}`: no such file", name(&page)));
                continue;
            };
            // Anchors into other files (a source line) are not headings.
            let Some(anchor) = anchor.filter(|_| target.extension().is_some_and(|e| e == "md"))
            else {
                continue;
            };
            let known = anchors
                .entry(target.clone())
                .or_insert_with(|| parse(&read(&target)).anchors);
            if !known.iter().any(|known| known == anchor) {
                walk.problems.push(format!(
                    "{}: link `{dest}`: no heading with anchor #{anchor} in {}",
                    name(&page),
                    name(&target)
                ));
            }
        }
    }
    walk
}

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_relative_link_in_the_readme_and_docs_names_a_file_and_a_heading_that_exist() {
    let walk = walk(repository());
    assert!(
        walk.problems.is_empty(),
        "broken links in the docs:\n{}",
        walk.problems.join("\n")
    );
    assert!(
        walk.links_checked > 0,
        "the docs were read but no link was found"
    );
}

#[test]
fn every_docs_page_is_linked_from_the_readme() {
    let readme = repository().join("README.md");
    let linked: Vec<PathBuf> = parse(&read(&readme))
        .links
        .iter()
        .filter(|dest| !is_external(dest))
        .filter_map(|dest| {
            let path = dest.split('#').next().unwrap_or_default();
            repository().join(path).canonicalize().ok()
        })
        .collect();
    let unlinked: Vec<String> = pages(repository())
        .into_iter()
        .skip(1)
        .filter(|page| !linked.contains(page))
        .map(|page| page.display().to_string())
        .collect();
    assert!(
        unlinked.is_empty(),
        "docs pages the README does not link to:\n{}",
        unlinked.join("\n")
    );
}

#[test]
fn a_broken_link_and_an_unknown_anchor_are_both_named_and_nothing_else() {
    let dir = tempfile::tempdir().expect("a temp dir");
    fs::create_dir(dir.path().join("docs")).expect("creating docs/");
    fs::write(
        dir.path().join("README.md"),
        "# Title\n\n## Usage\n\n## Usage\n\n## Usage\n\n\
         Fine: [the third usage](#usage-2), [a guide](docs/guide.md#who-was-in-a-room-roster-and-rooms),\n\
         [the same guide](/docs/guide.md), [a picture](docs/shot.png), <https://example.com/x#y>,\n\
         `[in a code span](docs/nowhere.md)`.\n\n\
         ```\n[in a code block](docs/nowhere.md)\n```\n\n\
         Broken: [gone](docs/missing.md) and [lost](docs/guide.md#no-such-heading).\n",
    )
    .expect("writing README.md");
    fs::write(
        dir.path().join("docs/guide.md"),
        "# Guide\n\n## Who was in a room: `roster` and `rooms`\n\nBack to [the usage](../README.md#usage).\n",
    )
    .expect("writing docs/guide.md");
    fs::write(dir.path().join("docs/shot.png"), b"not really a picture").expect("writing a png");

    let walk = walk(dir.path());

    assert_eq!(
        walk.problems,
        [
            "README.md: link `docs/missing.md`: no such file",
            "README.md: link `docs/guide.md#no-such-heading`: no heading with anchor \
             #no-such-heading in docs/guide.md",
        ],
    );
    assert_eq!(walk.links_checked, 7);
}
