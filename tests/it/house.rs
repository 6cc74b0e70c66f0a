//! The house rules a newcomer relies on, checked: every source file under 800 lines and opening
//! with a line that says what it holds, imports that run one way inside every crate, a README
//! that fits a few screens, and docs whose links, anchors, cited paths and invariant numbers all
//! exist. (Function length and argument counts are clippy's `too_many_lines` and
//! `too_many_arguments`, denied in CI with the thresholds of `clippy.toml`.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a source file may be.
const MAX_LINES: usize = 800;
/// The longest the README may be (the rest is the book in `docs/`).
const MAX_README_LINES: usize = 200;
/// How many safety invariants `docs/invariants.md` numbers.
const INVARIANTS: u32 = 7;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir` (relative to the repository), skipping build output, venvs and git.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root().join(dir)];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if !matches!(name.as_str(), "target" | ".git" | "node_modules" | "dist")
                    && !name.starts_with(".venv")
                    && name != "__pycache__"
                {
                    todo.push(p);
                }
            } else {
                out.push(p.strip_prefix(root()).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(root().join(p)).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The project's own source files: Rust, Python and shell.
fn sources() -> Vec<PathBuf> {
    files_under(Path::new("."))
        .into_iter()
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("rs" | "py" | "sh")
            ) || p.starts_with(".ci")
        })
        .collect()
}

#[test]
fn no_source_file_is_over_800_lines() {
    let long: Vec<String> = sources()
        .iter()
        .map(|p| (p, read(p).lines().count()))
        .filter(|(_, n)| *n > MAX_LINES)
        .map(|(p, n)| format!("{} ({n} lines)", p.display()))
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:#?}");
}

#[test]
fn every_rust_file_opens_with_a_line_that_says_what_it_holds() {
    let bare: Vec<String> = sources()
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter(|p| {
            let text = read(p);
            let first = text.lines().next().unwrap_or_default();
            !first.starts_with("//! ") || first.len() < 20
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(bare.is_empty(), "no `//!` first line: {bare:#?}");
}

#[test]
fn the_readme_fits_a_few_screens() {
    let n = read(Path::new("README.md")).lines().count();
    assert!(
        n <= MAX_README_LINES,
        "README.md has {n} lines (at most {MAX_README_LINES})"
    );
}

// ---- Imports run one way ----

/// A crate's modules: module path (`""` for the root, `a::b`) → its file.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    files_under(src)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter_map(|p| {
            let rel = p.strip_prefix(src).ok()?.with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] {
                parts.clear();
            }
            // A binary's own `main.rs` beside a `lib.rs` is its own crate; `bin/` too.
            if p.ends_with("main.rs") && src.join("lib.rs").exists() {
                return None;
            }
            Some((parts.join("::"), p))
        })
        .collect()
}

/// `code` with the contents of its string and char literals blanked (a `use` in a message is not
/// an import).
fn without_strings(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            'r' if matches!(chars.peek(), Some('"' | '#')) => {
                let mut hashes = 0;
                while chars.peek() == Some(&'#') {
                    chars.next();
                    hashes += 1;
                }
                if chars.peek() != Some(&'"') {
                    out.push('r');
                    out.extend(std::iter::repeat_n('#', hashes));
                    continue;
                }
                chars.next();
                out.push_str("\"\"");
                // Up to the closing quote followed by as many hashes.
                let mut run: Option<usize> = None;
                for c in chars.by_ref() {
                    match (c, run) {
                        ('"', _) => run = Some(0),
                        ('#', Some(n)) => run = Some(n + 1),
                        _ => run = None,
                    }
                    if run == Some(hashes) {
                        break;
                    }
                }
            }
            '"' => {
                out.push_str("\"\"");
                let mut escaped = false;
                for c in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The text of a file without its `#[cfg(test)]` modules (tests may import anything), without
/// comments, and with its string literals blanked.
fn code_of(text: &str) -> String {
    without_strings(&code_of_lines(text))
}

fn code_of_lines(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i32> = None;
    let mut depth = 0i32;
    let mut pending_test = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        if skip_depth.is_none() && t.starts_with("#[cfg(test)]") {
            pending_test = true;
            continue;
        }
        let opens = line.matches('{').count() as i32;
        let closes = line.matches('}').count() as i32;
        if pending_test && skip_depth.is_none() {
            pending_test = false;
            if t.starts_with("mod ") && opens > 0 {
                skip_depth = Some(depth);
                depth += opens - closes;
                continue;
            }
        }
        depth += opens - closes;
        if let Some(d) = skip_depth {
            if depth <= d {
                skip_depth = None;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The paths a `use` tree names, expanded: `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    // `x as y` names `x`.
    let mut words = tree.split_whitespace().peekable();
    let mut kept = String::new();
    while let Some(w) = words.next() {
        if w == "as" {
            let renamed = words.next().unwrap_or_default();
            kept.extend(renamed.chars().filter(|c| matches!(c, ',' | '}')));
        } else {
            kept.push_str(w);
        }
    }
    let tree = kept;
    let Some(open) = tree
        .find('{')
        .filter(|o| tree.rfind('}').is_some_and(|c| c > *o))
    else {
        return vec![tree.trim_end_matches("::").to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(expand)
        .map(|p| {
            if p == "self" {
                prefix.trim_end_matches("::").to_string()
            } else {
                format!("{prefix}{p}")
            }
        })
        .collect()
}

/// The module paths (inside the crate) that `code` of module `me` imports or names.
fn imports(code: &str, me: &str, mods: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let mut paths = Vec::new();
    // `use` items, whole (they may span lines): from a `use` that starts a word to its `;`.
    for item in code.split(';') {
        let start = item.match_indices("use ").map(|(i, _)| i).find(|&i| {
            item[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        });
        if let Some(i) = start {
            paths.extend(expand(&item[i + 4..]));
        }
    }
    // Paths named inline: `crate::a::b` and `super::x`.
    for anchor in ["crate::", "super::"] {
        for (i, _) in code.match_indices(anchor) {
            let rest: String = code[i..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            // `crate::{…}` is a use tree, expanded above.
            if rest.len() > anchor.len() && !rest.ends_with("::") {
                paths.push(rest);
            }
        }
    }
    let mine: Vec<&str> = if me.is_empty() {
        vec![]
    } else {
        me.split("::").collect()
    };
    let mut out = BTreeSet::new();
    for p in paths {
        let segs: Vec<&str> = p.split("::").filter(|s| !s.is_empty()).collect();
        let Some(first) = segs.first() else { continue };
        let absolute: Vec<String> = match *first {
            "crate" => segs[1..].iter().map(|s| s.to_string()).collect(),
            "super" => {
                let mut base: Vec<String> = mine.iter().map(|s| s.to_string()).collect();
                let mut rest = &segs[..];
                while rest.first() == Some(&"super") {
                    base.pop();
                    rest = &rest[1..];
                }
                base.extend(rest.iter().map(|s| s.to_string()));
                base
            }
            "self" => {
                let mut base: Vec<String> = mine.iter().map(|s| s.to_string()).collect();
                base.extend(segs[1..].iter().map(|s| s.to_string()));
                base
            }
            // A child module named without `self::` (`use child::X` in its parent).
            child => {
                let mut base: Vec<String> = mine.iter().map(|s| s.to_string()).collect();
                base.push(child.to_string());
                if !mods.contains_key(&base.join("::")) {
                    continue;
                }
                base.extend(segs[1..].iter().map(|s| s.to_string()));
                base
            }
        };
        // The longest prefix that is a module file is what is imported.
        let target = (0..=absolute.len())
            .rev()
            .map(|n| absolute[..n].join("::"))
            .find(|m| mods.contains_key(m))
            .unwrap_or_default();
        if target != me {
            out.insert(target);
        }
    }
    out
}

/// The circles in a graph (strongly connected components of more than one module).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn reach(g: &BTreeMap<String, BTreeSet<String>>, from: &str, seen: &mut BTreeSet<String>) {
        for n in g.get(from).into_iter().flatten() {
            if seen.insert(n.clone()) {
                reach(g, n, seen);
            }
        }
    }
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut placed = BTreeSet::new();
    for m in graph.keys() {
        if placed.contains(m) {
            continue;
        }
        let mut from_m = BTreeSet::new();
        reach(graph, m, &mut from_m);
        let comp: Vec<String> = from_m
            .iter()
            .filter(|n| {
                let mut back = BTreeSet::new();
                reach(graph, n, &mut back);
                back.contains(m)
            })
            .cloned()
            .collect();
        if comp.len() > 1 {
            placed.extend(comp.iter().cloned());
            out.push(comp);
        }
    }
    out
}

fn crate_sources() -> Vec<PathBuf> {
    [
        "keyguard-core",
        "keyguard-aws",
        "rule-lambda",
        "remediator",
        "reporter",
    ]
    .iter()
    .map(|c| Path::new(c).join("src"))
    .chain([PathBuf::from("src")])
    .collect()
}

#[test]
fn imports_run_one_way_inside_every_crate() {
    let mut found = Vec::new();
    for src in crate_sources() {
        let mods = modules(&src);
        let graph: BTreeMap<String, BTreeSet<String>> = mods
            .iter()
            .map(|(m, p)| (m.clone(), imports(&code_of(&read(p)), m, &mods)))
            .collect();
        for c in circles(&graph) {
            let files: Vec<String> = c.iter().map(|m| mods[m].display().to_string()).collect();
            found.push(files.join(" → "));
        }
    }
    assert!(found.is_empty(), "files that import each other: {found:#?}");
}

#[test]
fn the_import_check_sees_a_circle() {
    let mods: BTreeMap<String, PathBuf> = ["", "a", "b", "c", "c::d"]
        .iter()
        .map(|m| (m.to_string(), PathBuf::from(format!("{m}.rs"))))
        .collect();
    let a = imports(
        "use crate::b::{X, Y};\nfn f() { crate::c::d::g() }",
        "a",
        &mods,
    );
    assert_eq!(a, BTreeSet::from(["b".to_string(), "c::d".to_string()]));
    let d = imports(
        "use super::super::a::Z;\nuse super::{self, W};",
        "c::d",
        &mods,
    );
    assert_eq!(d, BTreeSet::from(["a".to_string(), "c".to_string()]));
    assert_eq!(expand("a::{b as c, d::{e as f}}"), vec!["a::b", "a::d::e"]);
    let noisy = "fn f() { log(\"last use of {} not read: {e}\"); x(r#\"use crate::c::d\"#) }";
    assert_eq!(imports(&code_of(noisy), "a", &mods), BTreeSet::new());
    let lib = imports(
        &code_of("mod a;\npub use a::X;\n#[cfg(test)]\nmod tests {\n use crate::b::Q;\n}\n"),
        "",
        &mods,
    );
    assert_eq!(lib, BTreeSet::from(["a".to_string()]));
    let graph = BTreeMap::from([
        ("a".to_string(), a),
        ("b".to_string(), BTreeSet::new()),
        ("c::d".to_string(), d),
        ("c".to_string(), BTreeSet::new()),
    ]);
    assert_eq!(
        circles(&graph),
        vec![vec!["a".to_string(), "c::d".to_string()]]
    );
}

// ---- The docs: links, anchors, cited paths, invariants ----

fn doc_pages() -> Vec<PathBuf> {
    let mut pages = vec![PathBuf::from("README.md")];
    pages.extend(
        files_under(Path::new("docs"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    pages
}

/// Markdown outside fenced code blocks.
fn prose(text: &str) -> String {
    let mut fenced = false;
    text.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors a page defines: its headings' slugs (numbered when repeated) and `<a id>`s.
fn anchors(page: &Path) -> BTreeSet<String> {
    let text = read(page);
    let mut out = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in prose(&text).lines() {
        if let Some(h) = line.strip_prefix('#') {
            let s = slug(h.trim_start_matches('#'));
            let n = seen.entry(s.clone()).or_default();
            out.insert(if *n == 0 {
                s.clone()
            } else {
                format!("{s}-{n}")
            });
            *n += 1;
        }
        for (i, _) in line.match_indices("<a id=\"") {
            let rest = &line[i + 7..];
            out.insert(rest[..rest.find('"').unwrap_or(0)].to_string());
        }
    }
    out
}

/// `[text](target)` links of a page (outside code).
fn links(text: &str) -> Vec<String> {
    let text = prose(text);
    let mut out = Vec::new();
    for (i, _) in text.match_indices("](") {
        let rest = &text[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].trim().to_string());
        }
    }
    out
}

/// Checks `target` (a link from `from`): the file exists, and so does the anchor.
fn check_link(from: &Path, target: &str) -> Option<String> {
    if target.starts_with("http://")
        || target.starts_with("https://")
        || target.starts_with("mailto:")
    {
        return None;
    }
    let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
    let file = if path.is_empty() {
        from.to_path_buf()
    } else {
        normalize(&from.parent().unwrap_or(Path::new("")).join(path))
    };
    if !root().join(&file).exists() {
        return Some(format!(
            "{}: {target}: no file {}",
            from.display(),
            file.display()
        ));
    }
    if !anchor.is_empty()
        && file.extension().is_some_and(|e| e == "md")
        && !anchors(&file).contains(anchor)
    {
        return Some(format!(
            "{}: {target}: no anchor #{anchor} in {}",
            from.display(),
            file.display()
        ));
    }
    None
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// Repository paths cited in backticks (`remediator/src/lease.rs`, a docs page with an anchor,
/// `tests/it/crash_safety.rs::a_test`); what only a run creates (venvs) is not cited as a file.
fn cited_paths(text: &str) -> Vec<String> {
    const TOP: [&str; 13] = [
        "keyguard-core/",
        "keyguard-aws/",
        "rule-lambda/",
        "remediator/",
        "reporter/",
        "report-templates/",
        "deploy/",
        "docs/",
        "examples/",
        "tests/",
        "src/",
        "conformance-packs/",
        ".ci/",
    ];
    let mut out = Vec::new();
    for piece in text.split('`').skip(1).step_by(2) {
        let p = piece.trim();
        if TOP.iter().any(|t| p.starts_with(t))
            && !p.contains(['*', '<', '{', '…', ' ', '$'])
            && !p.ends_with('/')
            && !p.contains("/.venv")
        {
            out.push(p.split("::").next().unwrap_or(p).to_string());
        }
    }
    out
}

#[test]
fn every_link_anchor_and_cited_path_of_the_docs_exists() {
    let mut broken = Vec::new();
    for page in doc_pages() {
        let text = read(&page);
        for target in links(&text) {
            broken.extend(check_link(&page, &target));
        }
        for p in cited_paths(&prose(&text)) {
            broken.extend(check_link(Path::new("README.md"), &p));
        }
    }
    assert!(broken.is_empty(), "broken: {broken:#?}");
}

#[test]
fn every_path_and_docs_anchor_the_code_cites_exists() {
    let mut broken = Vec::new();
    for file in sources() {
        let text = read(&file);
        let comments: String = text
            .lines()
            .filter(|l| {
                let t = l.trim_start();
                t.starts_with("//") || t.starts_with('#')
            })
            .collect::<Vec<_>>()
            .join("\n");
        for p in cited_paths(&comments) {
            if let Some(e) = check_link(Path::new("README.md"), &p) {
                broken.push(format!("{}: {e}", file.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "the code cites what does not exist: {broken:#?}"
    );
}

#[test]
fn invariants_are_cited_by_their_one_numbering() {
    let page = Path::new("docs/invariants.md");
    let defined = anchors(page);
    for n in 1..=INVARIANTS {
        assert!(
            defined.contains(&format!("invariant-{n}")),
            "docs/invariants.md lacks #invariant-{n}"
        );
    }
    let mut wrong = Vec::new();
    let files = sources().into_iter().chain(doc_pages());
    for file in files {
        let text = read(&file);
        let lower = text.to_lowercase();
        // The seed documents this repository grew from are not in it.
        if text.contains(concat!("DESIGN", ".md")) || text.contains(concat!("DESIGN", " invariant"))
        {
            wrong.push(format!(
                "{}: cites a design document the repository does not have",
                file.display()
            ));
        }
        for (i, _) in lower.match_indices("invariant ") {
            let n: String = lower[i + 10..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            match n.parse::<u32>() {
                Ok(n) if !(1..=INVARIANTS).contains(&n) => {
                    wrong.push(format!("{}: invariant {n} does not exist", file.display()))
                }
                Ok(_)
                    if file.extension().is_some_and(|e| e != "md")
                        && !text.contains("docs/invariants.md") =>
                {
                    wrong.push(format!(
                        "{}: cites an invariant without `docs/invariants.md`",
                        file.display()
                    ))
                }
                _ => {}
            }
        }
    }
    wrong.dedup();
    assert!(wrong.is_empty(), "{wrong:#?}");
}
