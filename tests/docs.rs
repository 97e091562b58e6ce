//! The book in `docs/` is kept honest here.
//!
//! Chapters paste code and output in, so that they read well as plain Markdown on GitHub. Every
//! pasted block sits between two markers that say where it comes from:
//!
//! ```text
//! <!-- generated: diff src/bin/01_single.rs src/bin/02_thread_per_conn.rs -->
//! ...the block...
//! <!-- end generated -->
//! ```
//!
//! Kinds of block:
//! - `diff OLD NEW`: a unified diff of the two files' code (below their `//!` headers);
//! - `excerpt FILE [from "TEXT"] [to "LINE"]`: from the first line containing TEXT through the
//!   next line that, trimmed, is exactly LINE and is indented like the first (both optional),
//!   with common indentation removed;
//! - `response STAGE [FLAGS] send "BYTES"`: what the stage, started with FLAGS on a free port,
//!   answers to BYTES (`\r` and `\n` escapes allowed); `Date:` values are not compared;
//! - `lines FILE containing "A" "B"...`: the lines of FILE that contain any of the strings.
//!
//! [`generated_blocks_match_their_sources`] regenerates every block and fails on any difference.
//! `cargo test --test docs -- --ignored refresh` rewrites them all in place (see
//! `docs/CONTRIBUTING.md`). The other tests check what a learner types: every `--bin NAME` is a
//! real stage, every flag given to a stage is in that stage's `--help`, every flag named anywhere
//! exists, every measured number in the prose is in a committed measurement, and every relative
//! link resolves. The last tests run the teaching code of chapters 4 and 5 (`docs/examples/`),
//! so what those chapters show is code that builds and works.

mod common;
#[path = "../docs/examples/one_request_per_read.rs"]
mod one_request_per_read;
#[path = "../docs/examples/per_read_timeout.rs"]
mod per_read_timeout;
#[path = "../docs/examples/read_once_per_event.rs"]
mod read_once_per_event;
#[path = "../docs/examples/tiny_loop.rs"]
#[allow(dead_code)] // its `main` is for `cargo run --example tiny_loop`; the tests call `serve`
mod tiny_loop;
#[path = "../docs/examples/tiny_pool.rs"]
mod tiny_pool;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const REFRESH: &str = "cargo test --test docs -- --ignored refresh";

/// Every stage binary, with the path Cargo built it at.
const STAGES: &[(&str, &str)] = common::ALL_STAGES;

/// Long flags of other programs the chapters use (cargo's, and the test harness's). Any other
/// long flag must belong to a stage, to `load_test.sh` or to the load generator.
const OTHER_TOOLS_FLAGS: &[&str] = &[
    "--release",
    "--bin",
    "--example",
    "--test",
    "--ignored",
    "--lib",
    "--nocapture",
    "--locked",
    "--help",
    // draw.py's and measure.sh's
    "--out",
    "--from",
    "--to",
    "--list",
    // bench/bare_loop.rs's and bench/cooks.sh's
    "--threads",
    "--parts",
];

fn root() -> &'static Path {
    Path::new(ROOT)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The book's Markdown files: everything under `docs/`, sorted.
fn book_files() -> Vec<PathBuf> {
    let files = files_under("docs", "md");
    assert!(!files.is_empty(), "no chapters under docs/");
    files
}

/// Every file under `dir` (relative to the repository) whose name ends in `.ext`, sorted.
fn files_under(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root().join(dir)];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == ext) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

// ---------------------------------------------------------------------------------------------
// Generated blocks
// ---------------------------------------------------------------------------------------------

const BEGIN: &str = "<!-- generated: ";
const END: &str = "<!-- end generated -->";

/// One generated block in a chapter: where it is, what it says it is, what it holds now.
struct Block {
    /// 1-based line of the opening marker.
    line: usize,
    spec: String,
    /// Line indexes (0-based) of the first body line and of the closing marker.
    body: std::ops::Range<usize>,
}

fn blocks(lines: &[&str], file: &Path) -> Vec<Block> {
    let mut found = Vec::new();
    // A marker inside a fenced block is an example of a marker (CONTRIBUTING.md has one).
    let mut fence: Option<&str> = None;
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim();
        if let Some(open) = fence {
            if trimmed == open {
                fence = None;
            }
        } else if trimmed.starts_with("```") {
            let ticks = trimmed.len() - trimmed.trim_start_matches('`').len();
            fence = Some(&trimmed[..ticks]);
        } else if let Some(rest) = trimmed.strip_prefix(BEGIN) {
            let spec = rest
                .strip_suffix("-->")
                .unwrap_or_else(|| panic!("{}:{}: marker not closed", relative(file), i + 1))
                .trim()
                .to_string();
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].trim() == END)
                .unwrap_or_else(|| {
                    panic!("{}:{}: no `{END}` after this marker", relative(file), i + 1)
                });
            found.push(Block {
                line: i + 1,
                spec,
                body: i + 1..end,
            });
            i = end;
        }
        i += 1;
    }
    found
}

/// Splits a marker's arguments on spaces, keeping "quoted text" together.
fn words(spec: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = spec.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            words.push(chars.by_ref().take_while(|&c| c != '"').collect());
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
            words.push(word);
        }
    }
    words
}

/// What a block with this spec must contain, fences included, or why it cannot be made.
fn render(spec: &str) -> Result<String, String> {
    let words = words(spec);
    let (content, lang) = match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["diff", old, new] => (diff_files(old, new)?, "diff"),
        ["excerpt", file, ref options @ ..] => {
            let (mut from, mut to) = (None, None);
            for pair in options.chunks(2) {
                match pair {
                    ["from", text] => from = Some(*text),
                    ["to", text] => to = Some(*text),
                    _ => return Err(format!("cannot read the options {options:?}")),
                }
            }
            (excerpt(file, from, to)?, language(file))
        }
        ["response", stage, ref rest @ ..] => match rest {
            [ref flags @ .., "send", bytes] => (response(stage, flags, &unescape(bytes))?, "text"),
            _ => return Err("a response block needs `send \"BYTES\"` last".into()),
        },
        ["lines", file, "containing", ref needles @ ..] if !needles.is_empty() => {
            let text = source(file)?;
            let picked: Vec<&str> = text
                .lines()
                .filter(|line| needles.iter().any(|n| line.contains(n)))
                .map(str::trim_end)
                .collect();
            if picked.is_empty() {
                return Err(format!("no line of {file} contains any of {needles:?}"));
            }
            (picked.join("\n"), "text")
        }
        _ => return Err(format!("unknown kind of block `{spec}`")),
    };
    Ok(fenced(&content, lang))
}

/// `\r`, `\n` and `\\` in a marker's quoted text, as bytes.
fn unescape(text: &str) -> Vec<u8> {
    text.replace("\\r", "\r")
        .replace("\\n", "\n")
        .replace("\\\\", "\\")
        .into_bytes()
}

/// Starts `stage` on a free port, sends `request`, and returns the answer as text.
fn response(stage: &str, flags: &[&str], request: &[u8]) -> Result<String, String> {
    let (_, exe) = STAGES
        .iter()
        .find(|(name, _)| *name == stage)
        .ok_or_else(|| format!("no stage {stage}"))?;
    let mut args = flags.to_vec();
    args.push("--quiet");
    let server = common::Stage::start(exe, &args);
    let answer = server.exchange(request);
    Ok(String::from_utf8_lossy(&answer)
        .replace("\r\n", "\n")
        .trim_end()
        .to_string())
}

/// A block with its `Date:` values blanked: they change every second and prove nothing.
fn without_dates(block: &str) -> String {
    block
        .lines()
        .map(|line| {
            if line.starts_with("Date: ") {
                "Date: *"
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn fenced(content: &str, lang: &str) -> String {
    // A fence must be longer than any run of backticks inside the block.
    let longest = content.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{lang}\n{content}\n{fence}\n")
}

fn language(file: &str) -> &'static str {
    match Path::new(file).extension().and_then(|e| e.to_str()) {
        Some("rs") => "rust",
        Some("sh") => "sh",
        Some("toml") => "toml",
        _ => "text",
    }
}

fn source(file: &str) -> Result<String, String> {
    fs::read_to_string(root().join(file)).map_err(|e| format!("cannot read {file}: {e}"))
}

fn excerpt(file: &str, from: Option<&str>, to: Option<&str>) -> Result<String, String> {
    let text = source(file)?;
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return Err(format!("{file} is empty"));
    }
    let start = match from {
        Some(needle) => lines
            .iter()
            .position(|line| line.contains(needle))
            .ok_or_else(|| format!("no line of {file} contains {needle:?}"))?,
        None => 0,
    };
    // The excerpt ends at the first line that is `to` *at the indentation of its first line*,
    // so `from "fn main" to "}"` stops at the brace that closes `main`, not an inner one.
    let indent_of = |line: &str| line.len() - line.trim_start().len();
    let end = match to {
        Some(last) => (start..lines.len())
            .find(|&i| lines[i].trim() == last && indent_of(lines[i]) == indent_of(lines[start]))
            .ok_or_else(|| format!("no line of {file} after {from:?} is {last:?}"))?,
        None => lines.len().saturating_sub(1),
    };
    let mut picked = &lines[start..=end];
    while let [rest @ .., last] = picked {
        if !last.trim().is_empty() {
            break;
        }
        picked = rest;
    }
    let indent = picked
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    Ok(picked
        .iter()
        .map(|line| line.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Index of the first line below a file's `//!` header (and the blank lines after it).
fn code_start(lines: &[&str]) -> usize {
    let mut i = lines
        .iter()
        .position(|line| !line.starts_with("//!"))
        .unwrap_or(lines.len());
    while i < lines.len() && lines[i].trim().is_empty() {
        i += 1;
    }
    i
}

/// `diff -u OLD NEW` of the code below the two `//!` headers, with the files' real line numbers.
fn diff_files(old: &str, new: &str) -> Result<String, String> {
    let (old_text, new_text) = (source(old)?, source(new)?);
    let old_lines: Vec<&str> = old_text.lines().collect();
    let new_lines: Vec<&str> = new_text.lines().collect();
    let (a0, b0) = (code_start(&old_lines), code_start(&new_lines));
    let hunks = unified_diff(&old_lines[a0..], &new_lines[b0..], a0, b0, 3);
    if hunks.is_empty() {
        return Err(format!("{old} and {new} have the same code"));
    }
    Ok(format!("--- {old}\n+++ {new}\n{hunks}")
        .trim_end()
        .to_string())
}

#[derive(Clone, Copy, PartialEq)]
enum Edit {
    Same,
    Removed,
    Added,
}

/// The edit script between `a` and `b` by longest common subsequence (files here are a
/// hundred lines, so the quadratic table costs nothing).
fn edits<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<(Edit, &'a str)> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut script = Vec::with_capacity(n + m);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            script.push((Edit::Same, a[i]));
            i += 1;
            j += 1;
        } else if j == m || (i < n && lcs[i + 1][j] >= lcs[i][j + 1]) {
            script.push((Edit::Removed, a[i]));
            i += 1;
        } else {
            script.push((Edit::Added, b[j]));
            j += 1;
        }
    }
    script
}

/// Hunks in `diff -u` format; `a0`/`b0` are the files' line offsets of `a` and `b`.
fn unified_diff(a: &[&str], b: &[&str], a0: usize, b0: usize, context: usize) -> String {
    let script = edits(a, b);
    let changed: Vec<usize> = (0..script.len())
        .filter(|&k| script[k].0 != Edit::Same)
        .collect();
    let mut out = String::new();
    let mut k = 0;
    while k < changed.len() {
        // Grow the hunk while the next change is close enough to share context.
        let first = changed[k];
        let mut last = first;
        while k + 1 < changed.len() && changed[k + 1] - last <= 2 * context + 1 {
            k += 1;
            last = changed[k];
        }
        k += 1;
        let start = first.saturating_sub(context);
        let end = (last + context + 1).min(script.len());
        // Line numbers where the hunk starts: count what came before it on each side.
        let before = &script[..start];
        let a_start = before.iter().filter(|(e, _)| *e != Edit::Added).count();
        let b_start = before.iter().filter(|(e, _)| *e != Edit::Removed).count();
        let body = &script[start..end];
        let a_len = body.iter().filter(|(e, _)| *e != Edit::Added).count();
        let b_len = body.iter().filter(|(e, _)| *e != Edit::Removed).count();
        let _ = writeln!(
            out,
            "@@ -{},{a_len} +{},{b_len} @@",
            a0 + a_start + 1,
            b0 + b_start + 1
        );
        for (edit, line) in body {
            let sign = match edit {
                Edit::Same => ' ',
                Edit::Removed => '-',
                Edit::Added => '+',
            };
            let _ = writeln!(out, "{sign}{line}");
        }
    }
    out
}

/// Checks (or, with `rewrite`, refreshes) every generated block of every chapter.
fn check_generated_blocks(rewrite: bool) -> Vec<String> {
    let mut problems = Vec::new();
    for file in book_files() {
        let text = read(&file);
        let lines: Vec<&str> = text.lines().collect();
        let mut out: Vec<String> = Vec::new();
        let mut copied = 0;
        for block in blocks(&lines, &file) {
            let at = format!("{}:{}", relative(&file), block.line);
            let now = lines[block.body.clone()].join("\n") + "\n";
            let wanted = match render(&block.spec) {
                Ok(wanted) => wanted,
                Err(why) => {
                    problems.push(format!("{at}: `{}`: {why}", block.spec));
                    continue;
                }
            };
            let wanted = if without_dates(&now) == without_dates(&wanted) {
                now.clone() // only dates differ: keep the chapter as it is
            } else {
                wanted
            };
            if now != wanted {
                let first = now
                    .lines()
                    .zip(wanted.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or(now.lines().count().min(wanted.lines().count()));
                problems.push(format!(
                    "{at}: `{}` is out of date (first difference at line {} of the block:\n  \
                     chapter: {:?}\n  source:  {:?})",
                    block.spec,
                    first + 1,
                    now.lines().nth(first).unwrap_or("(end)"),
                    wanted.lines().nth(first).unwrap_or("(end)"),
                ));
            }
            out.extend(
                lines[copied..block.body.start]
                    .iter()
                    .map(|s| s.to_string()),
            );
            out.extend(wanted.lines().map(String::from));
            copied = block.body.end;
        }
        if rewrite && copied > 0 {
            out.extend(lines[copied..].iter().map(|s| s.to_string()));
            let new_text = out.join("\n") + "\n";
            if new_text != text {
                fs::write(&file, new_text).unwrap();
                println!("refreshed {}", relative(&file));
            }
        }
    }
    problems
}

/// Every diff, code excerpt, measured table and output shown in a chapter is exactly what its
/// source produces today; a stage file edited without refreshing the book fails here.
#[test]
fn generated_blocks_match_their_sources() {
    let problems = check_generated_blocks(false);
    assert!(
        problems.is_empty(),
        "{} generated block(s) differ from their sources; run `{REFRESH}` and review the \
         diff:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// `cargo test --test docs -- --ignored refresh` rewrites every generated block from its source.
#[test]
#[ignore = "rewrites docs/: run it on purpose, with the command in docs/CONTRIBUTING.md"]
fn refresh() {
    let problems = check_generated_blocks(true);
    // Out-of-date blocks were just rewritten; only blocks that cannot be made are left.
    let broken: Vec<_> = problems
        .iter()
        .filter(|p| !p.contains("is out of date"))
        .collect();
    assert!(broken.is_empty(), "cannot generate:\n{broken:#?}");
}

/// The diff generator agrees with `diff -u` on a small case: hunk headers count lines from 1,
/// context is three lines, a removed line comes before the line that replaces it.
#[test]
fn the_diff_generator_writes_unified_hunks() {
    let a: Vec<String> = (1..=10).map(|i| format!("line {i}")).collect();
    let mut b = a.clone();
    b[4] = "line five".into();
    b.insert(9, "new line".into());
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let b: Vec<&str> = b.iter().map(String::as_str).collect();
    assert_eq!(
        unified_diff(&a, &b, 0, 0, 3),
        "@@ -2,9 +2,10 @@\n line 2\n line 3\n line 4\n-line 5\n+line five\n line 6\n line 7\n \
         line 8\n line 9\n+new line\n line 10\n"
    );
    assert_eq!(
        unified_diff(&a[..2], &b[..2], 20, 30, 3),
        "",
        "no hunks when nothing changed"
    );
}

// ---------------------------------------------------------------------------------------------
// What a learner types: binaries and flags
// ---------------------------------------------------------------------------------------------

/// A chapter's text split into prose and fenced code blocks, generated blocks left out (they
/// hold source code and recorded output, not commands to type).
struct Parts {
    prose: String,
    /// (language, body) of each fenced block typed by hand.
    code: Vec<(String, String)>,
}

fn parts(file: &Path) -> Parts {
    let text = read(file);
    let mut prose = String::new();
    let mut code = Vec::new();
    let mut fence: Option<(String, String, String)> = None; // (fence, language, body)
    let mut in_generated = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if fence.is_none() && trimmed.starts_with(BEGIN) {
            in_generated = true;
            continue;
        }
        if in_generated {
            in_generated = trimmed != END;
            continue;
        }
        match &mut fence {
            Some((marker, lang, body)) => {
                if trimmed == marker.as_str() {
                    code.push((std::mem::take(lang), std::mem::take(body)));
                    fence = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
            None if trimmed.starts_with("```") => {
                let ticks = trimmed.chars().take_while(|&c| c == '`').count();
                let lang = trimmed[ticks..].trim().to_string();
                fence = Some(("`".repeat(ticks), lang, String::new()));
            }
            None => {
                prose.push_str(line);
                prose.push('\n');
            }
        }
    }
    Parts { prose, code }
}

/// Shell commands in `sh`/`console` blocks: one per line (a `$ ` prompt is dropped, `\` joins
/// lines), split at `|`, `&&`, `;` and `&`, each split into words.
fn commands(parts: &Parts) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for (lang, body) in &parts.code {
        if !["sh", "console", "bash", "shell"].contains(&lang.as_str()) {
            continue;
        }
        let joined = body.replace("\\\n", " ");
        for line in joined.lines() {
            let line = line.trim();
            let line = match lang.as_str() {
                // In a console block only prompted lines are commands; the rest is output.
                "console" => match line.strip_prefix("$ ") {
                    Some(command) => command,
                    None => continue,
                },
                _ => line,
            };
            if line.starts_with('#') {
                continue;
            }
            let line = line.split(" #").next().unwrap_or(line);
            let mut separated = line.to_string();
            for separator in ["&&", "|", ";", "&"] {
                separated = separated.replace(separator, "\n");
            }
            for part in separated.lines() {
                let words = words(part);
                if !words.is_empty() {
                    found.push(words);
                }
            }
        }
    }
    found
}

/// The `--help` text of every stage, by name.
fn stage_helps() -> &'static HashMap<&'static str, String> {
    static HELPS: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    HELPS.get_or_init(|| {
        STAGES
            .iter()
            .map(|&(name, exe)| {
                let out = Command::new(exe).arg("--help").output().unwrap();
                assert!(out.status.success(), "{name} --help failed");
                (name, String::from_utf8(out.stdout).unwrap())
            })
            .collect()
    })
}

/// `load_test.sh --help`, if the script is there.
fn load_test_help() -> Option<&'static str> {
    static HELP: OnceLock<Option<String>> = OnceLock::new();
    HELP.get_or_init(|| {
        let script = root().join("load_test.sh");
        if !script.exists() {
            eprintln!("note: load_test.sh not found, so its flags are not checked");
            return None;
        }
        let out = Command::new("bash")
            .arg(&script)
            .arg("--help")
            .current_dir(root())
            .output()
            .unwrap();
        assert!(out.status.success(), "load_test.sh --help failed");
        Some(
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    })
    .as_deref()
}

/// The flags of the load generator, read from its clap definitions in `loadgen/src/cli.rs`
/// (`loadgen --help` is not at hand: `cargo test` builds only this package). Each field under
/// an `#[arg(long ...)]` attribute is a flag, spelled `long = "NAME"` if the attribute says so,
/// else as clap spells it: the field's name with dashes for underscores.
fn loadgen_flags() -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    let Ok(text) = fs::read_to_string(root().join("loadgen/src/cli.rs")) else {
        return flags;
    };
    for (at, _) in text.match_indices("#[arg(") {
        let Some(length) = text[at..].find(")]") else {
            continue;
        };
        let attribute = &text[at + "#[arg(".len()..at + length];
        let mut named = None;
        let mut long = false;
        for part in attribute.split(',').map(str::trim) {
            if part == "long" {
                long = true;
            } else if let Some(name) = part.strip_prefix("long = \"") {
                long = true;
                named = name.strip_suffix('"').map(str::to_string);
            }
        }
        if !long {
            continue;
        }
        let name = named.or_else(|| {
            // The field: the first line after the attribute that is not another attribute.
            let rest = &text[at + length + 2..];
            let field = rest
                .lines()
                .map(str::trim)
                .find(|line| !line.is_empty() && !line.starts_with("#["))?;
            let field = field.strip_prefix("pub ").unwrap_or(field);
            Some(field.split(':').next()?.trim().replace('_', "-"))
        });
        if let Some(name) = name {
            flags.insert(format!("--{name}"));
        }
    }
    flags
}

/// Whether `help` (a `--help` text) documents `flag`: as a word of its own, not a prefix of a
/// longer flag.
fn documents(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(at, _)| {
        let after = help[at + flag.len()..].chars().next();
        !matches!(after, Some(c) if c.is_ascii_alphanumeric() || c == '-')
    })
}

/// The word `text` starts with: letters, digits and dashes (`--work-ms` of `--work-ms 0`).
fn word_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or(text.len());
    &text[..end]
}

/// `--name` of a word like `--name=value`, if the word is a long flag.
fn long_flag(word: &str) -> Option<&str> {
    let name = word.split('=').next()?;
    let rest = name.strip_prefix("--")?;
    (rest.starts_with(|c: char| c.is_ascii_lowercase())
        && rest
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    .then_some(name)
}

/// Every long flag written anywhere in `text`, as `--name`.
fn flags_in(text: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for (at, _) in text.match_indices("--") {
        let before = text[..at].chars().next_back();
        if matches!(before, Some(c) if c.is_ascii_alphanumeric() || c == '-' || c == '!') {
            continue; // part of a word, or of `<!--`
        }
        if let Some(flag) = long_flag(word_at(&text[at..])) {
            flags.insert(flag.to_string());
        }
    }
    flags
}

/// The stage a command runs and the arguments it passes to it, for `cargo run ... --bin NAME
/// -- ARGS` and `target/release/NAME ARGS`.
fn stage_command(words: &[String]) -> Option<(&str, &[String])> {
    if words.first().map(String::as_str) == Some("cargo")
        && words.get(1).map(String::as_str) == Some("run")
    {
        let bin = words.iter().position(|w| w == "--bin")?;
        let name = words.get(bin + 1)?.as_str();
        let args = match words.iter().position(|w| w == "--") {
            Some(sep) => &words[sep + 1..],
            None => &[],
        };
        return Some((name, args));
    }
    let program = words.first()?;
    if program.contains("target/") {
        let name = program.rsplit('/').next()?;
        return Some((name, &words[1..]));
    }
    None
}

fn is_stage(name: &str) -> bool {
    root().join("src/bin").join(format!("{name}.rs")).exists()
}

/// Every `--bin NAME` in the book, the README and the stage headers names a real binary
/// (`src/bin/NAME.rs`), and the test knows every stage binary there is.
#[test]
fn every_bin_named_is_a_real_binary() {
    let mut texts: Vec<PathBuf> = book_files();
    texts.push(root().join("README.md"));
    let mut problems = Vec::new();
    for file in &texts {
        let text = read(file);
        for (at, _) in text.match_indices("--bin ") {
            let name: String = text[at + 6..]
                .chars()
                .take_while(|&c| c.is_ascii_alphanumeric() || c == '_')
                .collect();
            if name.is_empty() || name == "NAME" {
                continue;
            }
            if !is_stage(&name) {
                problems.push(format!("{}: --bin {name}", relative(file)));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "no such binary in src/bin:\n{}",
        problems.join("\n")
    );
    for entry in fs::read_dir(root().join("src/bin")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            STAGES.iter().any(|(stage, _)| *stage == name),
            "src/bin/{name}.rs is not in ALL_STAGES of tests/common/mod.rs: add it, so its flags are checked"
        );
    }
}

/// Every command in the book that starts a stage passes it only flags its `--help` lists, and
/// every `./load_test.sh` command uses only flags the script's `--help` lists.
#[test]
fn flags_given_to_a_stage_are_in_its_help() {
    let helps = stage_helps();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in book_files() {
        for words in commands(&parts(&file)) {
            if let Some((name, args)) = stage_command(&words) {
                let Some(help) = helps.get(name) else {
                    problems.push(format!(
                        "{}: `{}`: no stage {name}",
                        relative(&file),
                        words.join(" ")
                    ));
                    continue;
                };
                for flag in args.iter().filter_map(|w| long_flag(w)) {
                    checked += 1;
                    if !documents(help, flag) {
                        problems.push(format!(
                            "{}: `{}`: {name} has no {flag}",
                            relative(&file),
                            words.join(" ")
                        ));
                    }
                }
            } else if words[0].ends_with("load_test.sh") {
                let Some(help) = load_test_help() else {
                    continue;
                };
                // After `--` come flags for the stage(s) the script starts.
                let sep = words.iter().position(|w| w == "--").unwrap_or(words.len());
                // Stages are named in full (03_semaphore) or by number (03).
                let named: Vec<&str> = helps
                    .keys()
                    .copied()
                    .filter(|stage| {
                        words[1..sep]
                            .iter()
                            .any(|w| *stage == w.as_str() || stage.starts_with(&format!("{w}_")))
                    })
                    .collect();
                for flag in words[1..sep].iter().filter_map(|w| long_flag(w)) {
                    checked += 1;
                    if !documents(help, flag) {
                        problems.push(format!(
                            "{}: `{}`: load_test.sh has no {flag}",
                            relative(&file),
                            words.join(" ")
                        ));
                    }
                }
                for flag in words[sep..].iter().skip(1).filter_map(|w| long_flag(w)) {
                    checked += 1;
                    let stages: Vec<&str> = if named.is_empty() {
                        helps.keys().copied().collect()
                    } else {
                        named.clone()
                    };
                    if let Some(missing) = stages.iter().find(|s| !documents(&helps[*s], flag)) {
                        problems.push(format!(
                            "{}: `{}`: {missing} has no {flag}",
                            relative(&file),
                            words.join(" ")
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > 0, "found no stage commands to check");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every long flag named anywhere in the book (prose or code typed by hand) belongs to a
/// stage, to `load_test.sh`, to the load generator, or to one of the other tools the chapters
/// use: a renamed flag cannot linger in the prose.
#[test]
fn every_flag_mentioned_exists() {
    let mut known: BTreeSet<String> = OTHER_TOOLS_FLAGS.iter().map(|f| f.to_string()).collect();
    for help in stage_helps().values() {
        known.extend(flags_in(help));
    }
    let load_test = load_test_help();
    if let Some(help) = load_test {
        known.extend(flags_in(help));
    }
    known.extend(loadgen_flags());
    let mut problems = Vec::new();
    for file in book_files() {
        let parts = parts(&file);
        let mut text = parts.prose.clone();
        for (_, body) in &parts.code {
            text.push_str(body);
        }
        for flag in flags_in(&text) {
            if !known.contains(&flag) {
                problems.push(format!("{}: {flag}", relative(&file)));
            }
        }
    }
    if load_test.is_none() {
        // Without the script its flags cannot be told from typos; report them, do not fail.
        if !problems.is_empty() {
            eprintln!(
                "unchecked while load_test.sh is missing:\n{}",
                problems.join("\n")
            );
        }
        return;
    }
    assert!(
        problems.is_empty(),
        "flags that no stage, load_test.sh or listed tool has:\n{}",
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

/// Numbers with one decimal in the prose that are not measurements: (chapter, numbers, why).
const NOT_MEASURED: &[(&str, &[&str], &str)] = &[
    ("README.md", &["1500"], "the clients of a robustness test"),
    (
        "docs/05-timeouts.md",
        &["4.9"],
        "a made-up pause that dodges a read timeout",
    ),
    (
        "docs/05-timeouts.md",
        &["300", "1500", "5000"],
        "the deadlines and bounds of tests, and a flag's default",
    ),
    (
        "docs/06-event-loop.md",
        &["0.4"],
        "a quotient: (6.3 - 2.2) MiB / 10 000 connections",
    ),
    (
        "docs/07-keep-alive.md",
        &["9.3", "9.5", "9.6"],
        "sections of RFC 9112",
    ),
    (
        "docs/07-keep-alive.md",
        &["75"],
        "nginx's default keepalive_timeout",
    ),
    (
        "docs/08-cpu-pool.md",
        &["5", "200"],
        "parameters: the --cpu-ms of the measured runs and of the chapter's commands",
    ),
    (
        "docs/11-tokio.md",
        &["300"],
        "an exercise's --work-ms, answered after it",
    ),
    (
        "docs/11-tokio.md",
        &["512", "10"],
        "tokio's defaults: the blocking pool's most threads, and their idle seconds",
    ),
    (
        "docs/12-measuring.md",
        &["97.7", "98.3"],
        "a measured rate over its ceiling",
    ),
    (
        "docs/12-measuring.md",
        &["63"],
        "1 - 0.99^100, a probability",
    ),
    (
        "docs/12-measuring.md",
        &["800"],
        "the rate Little's law is asked about",
    ),
    (
        "docs/12-measuring.md",
        &["0.2"],
        "a share of requests; C / 50 s for C = 10",
    ),
    (
        "docs/12-measuring.md",
        &["0.6", "1.4", "3.0", "6.2"],
        "sums of retransmission waits",
    ),
    ("docs/13-beyond.md", &["9.3"], "a section of RFC 9112"),
];

/// Whether `number` occurs in `text` as a whole number, not inside a longer one.
fn contains_number(text: &str, number: &str) -> bool {
    text.match_indices(number).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + number.len()..].chars().next();
        // "2420.9" is in "2420.9 req/s" and ends "2420.9.", but is not in "12420.9" or "2420.95".
        !before.is_some_and(|c| c.is_ascii_digit() || c == '.')
            && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// Every number with one decimal in the chapters' prose (the load test's format: `2420.9`
/// req/s, `21.0` MiB) appears in a committed measurement file (`docs/measurements/*.txt`),
/// unless [`NOT_MEASURED`] says why not. Re-measuring without rewriting the sentences that
/// quote the old numbers fails here.
#[test]
fn numbers_in_the_prose_come_from_the_measurements() {
    let measured = measurement_files()
        .iter()
        .map(|path| read(path))
        .collect::<Vec<_>>()
        .join("\n");
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in book_files() {
        let name = relative(&file);
        let prose = without_inline_code(&parts(&file).prose);
        let chars: Vec<char> = prose.chars().collect();
        for (i, _) in chars.iter().enumerate().filter(|(_, c)| **c == '.') {
            let digits_before = chars[..i]
                .iter()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let digits_after = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let start = i - digits_before;
            let before = start.checked_sub(1).map(|j| chars[j]);
            // `HTTP/1.1` is a version; `.5` and `1.25` are not in the load test's format.
            if digits_before == 0 || digits_after != 1 || matches!(before, Some('.' | '/')) {
                continue;
            }
            if chars.get(i + 2) == Some(&'.') && chars.get(i + 3).is_some_and(char::is_ascii_digit)
            {
                continue; // a version or a section number like 1.2.3
            }
            let number: String = chars[start..i + 2].iter().collect();
            checked += 1;
            if !excused(&name, &number) && !contains_number(&measured, &number) {
                problems.push(format!("{name}: {number}"));
            }
        }
    }
    assert!(checked > 0, "no numbers found in the prose");
    assert!(
        problems.is_empty(),
        "numbers in the prose that no file in docs/measurements/ contains (re-measured? \
         update the sentence; derived? add it to NOT_MEASURED with the reason):\n{}",
        problems.join("\n")
    );
}

/// Units of measure a number in the prose may stand next to, longest first.
const UNITS: &[&str] = &[
    "requests per second",
    "connections",
    "connection",
    "threads",
    "thread",
    "seconds",
    "second",
    "req/s",
    "KiB",
    "MiB",
    "GiB",
    "ms",
    "us",
    "µs",
    "s",
    "x",
    "%",
];

/// Every number written in the measurement files, with its thousands joined (`10 000` and
/// `10000` both give `10000`), as [`numbers_in`] reads them.
fn measured_numbers() -> BTreeSet<String> {
    let mut numbers = BTreeSet::new();
    for path in measurement_files() {
        numbers.extend(
            numbers_in(&read(&path))
                .into_iter()
                .map(|(number, _)| number),
        );
    }
    numbers
}

/// The measurement files the prose may quote: `docs/measurements/*.txt`, sorted.
fn measurement_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join("docs/measurements"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
}

/// `prose` without its inline code: a command, a flag or a formula is not a quoted result.
fn without_inline_code(prose: &str) -> String {
    prose.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

/// Whether [`NOT_MEASURED`] excuses `number` in the file `name`.
fn excused(name: &str, number: &str) -> bool {
    NOT_MEASURED
        .iter()
        .any(|(file, numbers, _)| *file == name && numbers.contains(&number))
}

/// The numbers of `text` with the index (in chars) where each ends: digits, thousands groups of three after a
/// space or a comma (`73 550`, `1,500`), and at most one decimal part. Thousands separators
/// are dropped, so `73 550` comes back as `73550`.
fn numbers_in(text: &str) -> Vec<(String, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit()
            && !(i > 0 && (chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '.'));
        if !starts {
            i += 1;
            continue;
        }
        let mut number = String::new();
        let mut j = i;
        while j < chars.len() && chars[j].is_ascii_digit() {
            number.push(chars[j]);
            j += 1;
        }
        // Groups of exactly three digits after a space or a comma continue the number, when
        // the first group has one to three digits, as thousands are written.
        let joins = j - i <= 3;
        loop {
            let group = joins
                && j + 4 <= chars.len()
                && matches!(chars[j], ' ' | ',')
                && chars[j + 1..j + 4].iter().all(char::is_ascii_digit)
                && chars.get(j + 4).is_none_or(|c| !c.is_ascii_digit());
            if !group {
                break;
            }
            number.extend(&chars[j + 1..j + 4]);
            j += 4;
        }
        if j + 1 < chars.len() && chars[j] == '.' && chars[j + 1].is_ascii_digit() {
            number.push('.');
            j += 1;
            while j < chars.len() && chars[j].is_ascii_digit() {
                number.push(chars[j]);
                j += 1;
            }
        }
        found.push((number, j));
        i = j;
    }
    found
}

/// The unit right after position `at` of `text` (after at most one space), if any.
fn unit_after(text: &[char], at: usize) -> Option<&'static str> {
    let mut k = at;
    if text.get(k) == Some(&' ') {
        k += 1;
    }
    let rest: String = text[k.min(text.len())..].iter().take(24).collect();
    UNITS.iter().copied().find(|unit| {
        rest.starts_with(unit)
            && !rest[unit.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Every number next to a unit it measures (req/s, ms, s, KiB, MiB, x, %, threads,
/// connections...) in the book's and the README's prose is a number some committed
/// measurement file prints (`docs/measurements/*.txt`), or [`NOT_MEASURED`] says why it is
/// not a measurement (a parameter, a formula's result, a fact of the kernel). So no sentence
/// can go on quoting a figure that no run produced, as "about 40 000 requests per second"
/// once did next to a table that said 73 550.
#[test]
fn numbers_with_units_in_the_prose_are_measured_or_declared() {
    let measured = measured_numbers();
    let mut files = book_files();
    files.push(root().join("README.md"));
    let (mut checked, mut problems) = (0, Vec::new());
    for file in files {
        let name = relative(&file);
        let prose = without_inline_code(&parts(&file).prose);
        let chars: Vec<char> = prose.chars().collect();
        for (number, end) in numbers_in(&prose) {
            let Some(_) = unit_after(&chars, end) else {
                continue;
            };
            checked += 1;
            if !excused(&name, &number) && !measured.contains(&number) {
                problems.push(format!("{name}: {number}"));
            }
        }
    }
    assert!(checked > 0, "no numbers with units found");
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "numbers with a unit in the prose that no file in docs/measurements/ prints (re-measured? \
         update the sentence; a parameter, a formula or a fact? add it to NOT_MEASURED with the \
         reason):\n{}",
        problems.join("\n")
    );
}

/// Whether `word` is a ratio as bench/compare.sh prints it: one digit, a point, two digits.
fn is_ratio(word: &str) -> bool {
    let b = word.as_bytes();
    b.len() == 4 && b[1] == b'.' && [b[0], b[2], b[3]].iter().all(u8::is_ascii_digit)
}

/// Every ratio against nginx in the README's and the book's prose (`1.32 x nginx`, `0.39 x`)
/// is the median of a min-median-max triple (`1.28-1.32-1.40`) in a committed run of
/// bench/compare.sh (`docs/measurements/compare*.txt`). Re-measuring without rewriting the
/// tables that quote the old run fails here.
#[test]
fn ratios_in_the_prose_are_medians_of_a_committed_run() {
    let mut medians = BTreeSet::new();
    for path in measurement_files() {
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("compare"))
        {
            for word in read(&path).split_whitespace() {
                if let [low, median, high] = word.split('-').collect::<Vec<_>>()[..] {
                    if [low, median, high].into_iter().all(is_ratio) {
                        medians.insert(median.to_string());
                    }
                }
            }
        }
    }
    assert!(
        !medians.is_empty(),
        "no compare*.txt with ratios in docs/measurements"
    );
    let mut files = book_files();
    files.push(root().join("README.md"));
    let (mut checked, mut problems) = (0, Vec::new());
    for file in files {
        let prose = parts(&file).prose;
        for (at, _) in prose.match_indices(" x") {
            let Some(start) = at.checked_sub(4) else {
                continue;
            };
            let before = prose[..start].chars().next_back();
            let word = &prose[start..at];
            if !is_ratio(word) || before.is_some_and(|c| c.is_ascii_digit() || c == '.') {
                continue;
            }
            checked += 1;
            if !medians.contains(word) {
                problems.push(format!("{}: {word} x", relative(&file)));
            }
        }
    }
    assert!(checked > 0, "no ratios found in the prose");
    assert!(
        problems.is_empty(),
        "ratios that are no median in docs/measurements/compare*.txt (re-measured? update \
         the table):\n{}",
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Links
// ---------------------------------------------------------------------------------------------

/// Targets of Markdown links and images in `prose`: `[text](target)`, `![alt](target)` and
/// reference definitions `[name]: target`.
fn link_targets(prose: &str) -> Vec<String> {
    let mut targets = Vec::new();
    // Inline code is not a link.
    let text = without_inline_code(prose);
    for (at, _) in text.match_indices("](") {
        let rest = &text[at + 2..];
        if let Some(end) = rest.find(')') {
            let target = rest[..end].split_whitespace().next().unwrap_or("");
            targets.push(target.to_string());
        }
    }
    for line in text.lines() {
        let line = line.trim_start();
        if line.starts_with('[') {
            if let Some((_, target)) = line.split_once("]: ") {
                targets.push(target.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    }
    targets
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|&c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(file: &Path) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = BTreeSet::new();
    for line in parts(file).prose.lines() {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let base = slug(heading.trim_start_matches('#'));
        let count = seen.entry(base.clone()).or_insert(0);
        anchors.insert(if *count == 0 {
            base.clone()
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    anchors
}

/// Every relative link and image in the book and the README points to a file that exists,
/// and every `#anchor` into a Markdown file names one of its headings.
#[test]
fn relative_links_resolve() {
    let mut files = book_files();
    files.push(root().join("README.md"));
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        let dir = file.parent().unwrap();
        for target in link_targets(&parts(file).prose) {
            if target.is_empty()
                || target.contains("://")
                || target.starts_with("mailto:")
                || target.starts_with('<')
            {
                continue;
            }
            checked += 1;
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                dir.join(path)
            };
            if !resolved.exists() {
                problems.push(format!("{}: {target}: no such file", relative(file)));
                continue;
            }
            if let Some(anchor) = anchor {
                if resolved.extension().is_some_and(|e| e == "md")
                    && !anchors(&resolved).contains(anchor)
                {
                    problems.push(format!("{}: {target}: no such heading", relative(file)));
                }
            }
        }
    }
    assert!(checked > 0, "no links found at all");
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

/// Every chapter is in the book's table of contents, and every chapter file that the source
/// code's comments point to (`docs/NN-*.md`) exists.
#[test]
fn every_chapter_is_in_the_summary_and_the_source_points_to_real_chapters() {
    let summary = read(&root().join("docs/SUMMARY.md"));
    for file in book_files() {
        let name = relative(&file);
        let name = name.trim_start_matches("docs/");
        if name == "SUMMARY.md" {
            continue;
        }
        assert!(
            summary.contains(&format!("]({name})")),
            "docs/{name} is not listed in docs/SUMMARY.md"
        );
    }
    // Everything outside the book that may point into it: the code, its comments, the scripts.
    let mut sources: Vec<PathBuf> = ["README.md", "Cargo.toml", "load_test.sh", ".ci/run"]
        .iter()
        .map(|name| root().join(name))
        .collect();
    for (dir, ext) in [
        ("src", "rs"),
        ("tests", "rs"),
        ("loadgen", "rs"),
        ("loadgen", "md"),
        ("bench", "rs"),
        ("bench", "sh"),
        ("bench", "md"),
        ("scripts", "sh"),
        (".ci", "sh"),
    ] {
        sources.extend(files_under(dir, ext));
    }
    let mut mentioned = 0;
    for file in sources {
        let text = read(&file);
        for (at, _) in text.match_indices("docs/") {
            let name: String = text[at..]
                .chars()
                .take_while(|&c| c.is_ascii_alphanumeric() || "/-_.".contains(c))
                .collect();
            let name = name.trim_end_matches('.');
            if !name.ends_with(".md") {
                continue;
            }
            mentioned += 1;
            assert!(
                root().join(name).exists(),
                "{} points to {name}, which does not exist",
                relative(&file)
            );
        }
    }
    assert!(mentioned > 0);
}

// ---------------------------------------------------------------------------------------------
// The teaching code of chapters 4 and 5
// ---------------------------------------------------------------------------------------------

mod chapter_4_tiny_pool {
    use super::tiny_pool::{PoolClosed, TinyPool};
    use std::collections::BTreeSet;
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::thread;
    use std::time::Duration;

    /// Forty jobs on three workers: every job runs, only the three workers run them, and
    /// dropping the pool waits for the jobs still in the queue.
    #[test]
    fn every_job_runs_on_one_of_the_workers() {
        let names = Arc::new(Mutex::new(Vec::new()));
        {
            let pool = TinyPool::new(3, 8).unwrap();
            for _ in 0..40 {
                let names = Arc::clone(&names);
                pool.execute(move || {
                    thread::sleep(Duration::from_millis(2));
                    let name = thread::current().name().unwrap_or("?").to_string();
                    names.lock().unwrap().push(name);
                })
                .unwrap();
            }
        } // drop: close the queue, join the workers
        let names = names.lock().unwrap();
        assert_eq!(names.len(), 40, "every job ran before drop returned");
        let distinct: BTreeSet<&str> = names.iter().map(String::as_str).collect();
        assert!(distinct.len() <= 3, "{distinct:?}");
        assert!(
            distinct.iter().all(|n| n.starts_with("worker-")),
            "{distinct:?}"
        );
    }

    /// One busy worker and a queue of one: the second job waits in the queue, and the third
    /// `execute` blocks until there is room (back-pressure instead of an endless queue).
    #[test]
    fn a_full_queue_makes_execute_wait() {
        let pool = Arc::new(TinyPool::new(1, 1).unwrap());
        let (release, gate) = mpsc::channel::<()>();
        pool.execute(move || {
            let _ = gate.recv(); // hold the only worker until the test says so
        })
        .unwrap();
        thread::sleep(Duration::from_millis(50));
        pool.execute(|| {}).unwrap(); // fills the queue
        let third = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || pool.execute(|| {}))
        };
        thread::sleep(Duration::from_millis(100));
        assert!(
            !third.is_finished(),
            "execute must wait while the queue is full"
        );
        release.send(()).unwrap();
        assert_eq!(third.join().unwrap(), Ok(()));
    }

    /// A job that panics does not take its worker with it: the only worker goes on to run the
    /// next job. (The panic message on stderr is expected.)
    #[test]
    fn a_panicking_job_does_not_kill_its_worker() {
        let pool = TinyPool::new(1, 4).unwrap();
        pool.execute(|| panic!("a deliberately broken job"))
            .unwrap();
        let (done, ran) = mpsc::channel();
        pool.execute(move || done.send(()).unwrap()).unwrap();
        assert!(ran.recv_timeout(Duration::from_secs(10)).is_ok());
        drop(pool);
        let _ = PoolClosed; // the error type is part of the API the chapter shows
    }
}

mod chapter_5_per_read_timeout {
    use super::per_read_timeout::{read_head_with_read_timeout, trickle};
    use std::net::TcpListener;
    use std::thread;
    use std::time::{Duration, Instant};
    use tcp_server::blocking::deadline::DeadlineReader;
    use tcp_server::http::{self, ReadError};

    const HEAD: &[u8] = b"GET / HTTP/1.0\r\n\r\n";
    /// One byte every 100 ms: the 18 bytes of HEAD take about 1.7 s.
    const PAUSE: Duration = Duration::from_millis(100);

    /// A client sending a byte every 100 ms keeps a 500 ms per-read timeout waiting for the
    /// whole head, about 1.7 s: each byte starts the wait over, so the timeout never trips.
    #[test]
    fn a_trickling_client_never_trips_a_per_read_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = thread::spawn(move || trickle(addr, HEAD, PAUSE));
        let (stream, _) = listener.accept().unwrap();
        let started = Instant::now();
        let head = read_head_with_read_timeout(&stream, Duration::from_millis(500)).unwrap();
        let took = started.elapsed();
        assert_eq!(head, HEAD);
        assert!(
            took >= Duration::from_millis(1000),
            "read the head in {took:?}, not twice the timeout: the trickle takes about 1.7 s"
        );
        drop(stream);
        client.join().unwrap().unwrap();
    }

    /// The same client against a 300 ms *deadline* (the reader stage 05 uses) is cut at the
    /// deadline, long before its head is complete.
    #[test]
    fn the_same_client_is_cut_at_a_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = thread::spawn(move || trickle(addr, HEAD, PAUSE));
        let (stream, _) = listener.accept().unwrap();
        let started = Instant::now();
        let mut reader = DeadlineReader::new(&stream, Some(started + Duration::from_millis(300)));
        let mut input = http::Input::new();
        let result = http::read_request(&mut reader, &mut input);
        let took = started.elapsed();
        assert!(matches!(result, Err(ReadError::TimedOut)), "{result:?}");
        assert!(took >= Duration::from_millis(290), "cut early: {took:?}");
        assert!(took < Duration::from_millis(1500), "cut late: {took:?}");
        drop(stream);
        client.join().unwrap().unwrap();
    }
}

/// What chapter 6's tiny loop and chapter 10's tiny runtime must both do: serve on a free
/// port, on a thread of their own, one thread for all their clients.
mod tiny_servers {
    use std::io::{self, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread;
    use std::time::{Duration, Instant};

    pub const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n";
    pub const HELLO: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nHello World\n";

    /// Either example's server: `serve` (tiny_loop) or `serve_on` (tiny_runtime).
    pub type Serve = fn(TcpListener, Duration, &AtomicBool) -> io::Result<()>;

    /// A tiny server, serving on a free port on a thread of its own.
    pub struct Running {
        pub addr: SocketAddr,
        stop: Arc<AtomicBool>,
        thread: thread::JoinHandle<io::Result<()>>,
    }

    impl Running {
        pub fn start(serve: Serve, work: Duration) -> Running {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let stopped = Arc::clone(&stop);
            let thread = thread::spawn(move || serve(listener, work, &stopped));
            Running { addr, stop, thread }
        }

        /// Sets `stop`, connects once so that the server wakes up and sees it, and checks that
        /// it returned without an error.
        pub fn stop(self) {
            self.stop.store(true, Ordering::Relaxed);
            let _ = TcpStream::connect(self.addr);
            self.thread.join().unwrap().unwrap();
        }
    }

    /// Everything the server sends until it closes (at most 10 s).
    pub fn answer(client: &mut TcpStream) -> Vec<u8> {
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        let _ = client.read_to_end(&mut got);
        got
    }

    /// Twenty clients at once, 200 ms of work each: each gets exactly the answer, none sooner
    /// than the work, and all of them in well under the 4 s that serving them one after
    /// another would take.
    pub fn twenty_clients_at_once(serve: Serve) {
        let work = Duration::from_millis(200);
        let server = Running::start(serve, work);
        let started = Instant::now();
        let answers: Vec<(Vec<u8>, Duration)> = thread::scope(|scope| {
            let clients: Vec<_> = (0..20)
                .map(|_| {
                    scope.spawn(|| {
                        let mut client = TcpStream::connect(server.addr).unwrap();
                        client.write_all(REQUEST).unwrap();
                        let sent = Instant::now();
                        let got = answer(&mut client);
                        (got, sent.elapsed())
                    })
                })
                .collect();
            clients.into_iter().map(|c| c.join().unwrap()).collect()
        });
        let took = started.elapsed();
        for (got, waited) in &answers {
            assert_eq!(String::from_utf8_lossy(got), String::from_utf8_lossy(HELLO));
            assert!(
                *waited >= work,
                "answered before the work was done: {waited:?}"
            );
        }
        assert!(
            took < Duration::from_secs(2),
            "20 x 200 ms of work took {took:?}: served one after another, not together"
        );
        server.stop();
    }

    /// A request sent in three writes, its blank line split between the last two: nothing
    /// comes back before the blank line is complete, and exactly one answer after it.
    pub fn a_request_split_across_writes(serve: Serve) {
        let server = Running::start(serve, Duration::from_millis(50));
        let mut client = TcpStream::connect(server.addr).unwrap();
        client.set_nodelay(true).unwrap();
        client.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
        thread::sleep(Duration::from_millis(50));
        client.write_all(b"st: example.test\r\n\r").unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut early = [0u8; 64];
        let read = client.read(&mut early);
        assert!(
            read.as_ref()
                .is_err_and(|e| e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::TimedOut),
            "answered before the blank line: {read:?}"
        );
        client.write_all(b"\n").unwrap();
        assert_eq!(
            String::from_utf8_lossy(&answer(&mut client)),
            String::from_utf8_lossy(HELLO)
        );
        server.stop();
    }

    /// A head of 3000 bytes sent at once, longer than the servers' 1 KiB buffer: answered.
    pub fn a_head_longer_than_one_read(serve: Serve) {
        let server = Running::start(serve, Duration::ZERO);
        let mut request = b"GET / HTTP/1.1\r\nHost: example.test\r\nX-Pad: ".to_vec();
        request.resize(3000 - 4, b'a');
        request.extend_from_slice(b"\r\n\r\n");
        let mut client = TcpStream::connect(server.addr).unwrap();
        client.write_all(&request).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&answer(&mut client)),
            String::from_utf8_lossy(HELLO)
        );
        server.stop();
    }
}

mod chapter_6_tiny_loop {
    use super::tiny_loop::{serve, ANSWER};
    use super::tiny_servers::{self, HELLO};

    /// Twenty clients at once, 200 ms of work each, one thread (`serve` starts none): each
    /// gets exactly the answer, none sooner than the work, and all of them in well under the
    /// 4 s that serving them one after another would take. The work is a timer, not a sleep.
    #[test]
    fn twenty_clients_are_served_at_once_by_one_thread() {
        tiny_servers::twenty_clients_at_once(serve);
    }

    /// A request sent in three writes, its blank line split between the last two: nothing
    /// comes back before the blank line is complete, and exactly one answer after it.
    #[test]
    fn a_request_split_across_writes_is_answered_once_complete() {
        tiny_servers::a_request_split_across_writes(serve);
    }

    /// A head of 3000 bytes sent at once is one edge-triggered event and three reads of the
    /// loop's 1 KiB buffer: answered, because the loop reads until `WouldBlock`.
    #[test]
    fn a_head_longer_than_one_read_sent_at_once_is_answered() {
        tiny_servers::a_head_longer_than_one_read(serve);
    }

    /// What chapter 6 says the tiny server prints at start and answers to `curl -i` is what
    /// the code prints and sends.
    #[test]
    fn chapter_6_shows_what_the_code_prints() {
        let chapter = super::read(&super::root().join("docs/06-event-loop.md"));
        let code = super::read(&super::root().join("docs/examples/tiny_loop.rs"));
        assert!(code.contains(r#""tiny_loop listening on http://{addr}""#));
        assert!(code.contains(r#"unwrap_or_else(|| "1730".into())"#));
        assert!(chapter.contains("```text\ntiny_loop listening on http://127.0.0.1:1730\n```"));
        assert_eq!(ANSWER, HELLO);
        let shown = String::from_utf8_lossy(ANSWER).replace("\r\n", "\n");
        assert!(
            chapter.contains(&format!("```text\n{shown}```")),
            "docs/06-event-loop.md should show curl's output as a text block:\n{shown}"
        );
    }
}

mod chapter_6_read_once_per_event {
    use super::read_once_per_event::serve;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n";

    /// Starts the wrong loop on a free port; returns its address and the switch that stops it.
    fn start() -> (
        std::net::SocketAddr,
        Arc<AtomicBool>,
        thread::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let handle = thread::spawn(move || serve(listener, &stopped).unwrap());
        (addr, stop, handle)
    }

    /// Sends `REQUEST` in pieces of `piece` bytes, 30 ms apart; returns what came back within
    /// a second.
    fn ask(addr: std::net::SocketAddr, piece: usize) -> Vec<u8> {
        let mut client = TcpStream::connect(addr).unwrap();
        client.set_nodelay(true).unwrap();
        for part in REQUEST.chunks(piece) {
            client.write_all(part).unwrap();
            thread::sleep(Duration::from_millis(30));
        }
        client
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut answer = Vec::new();
        let _ = client.read_to_end(&mut answer);
        answer
    }

    /// Sent 8 bytes at a time, each piece is an event and fits one read: answered. Sent at
    /// once, the 39 bytes are one event; the loop reads 16 and waits for an event that never
    /// comes. Stage 06, which reads to `WouldBlock`, answers the same request sent at once.
    #[test]
    fn reading_once_per_edge_triggered_event_loses_the_rest_of_the_request() {
        let (addr, stop, handle) = start();
        assert!(
            ask(addr, 8).starts_with(b"HTTP/1.1 200 OK"),
            "in pieces: answered"
        );
        // As text, so that the learner who fixes the loop (chapter 6, exercise 3) reads the
        // answer the fixed loop sent.
        assert_eq!(
            String::from_utf8_lossy(&ask(addr, REQUEST.len())),
            "",
            "at once: never answered"
        );
        stop.store(true, Ordering::Relaxed);
        handle.join().unwrap();

        let stage = crate::common::Stage::start(
            env!("CARGO_BIN_EXE_06_event_loop"),
            &["--work-ms", "0", "--quiet"],
        );
        assert!(ask(stage.addr, REQUEST.len()).starts_with(b"HTTP/1.1 200 OK"));
    }
}

mod chapter_7_one_request_per_read {
    use super::one_request_per_read::serve;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::thread;
    use std::time::Duration;

    const THREE: &[u8] = b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\nGET /3 HTTP/1.1\r\nHost: t\r\n\r\n";

    /// Sends three pipelined requests in one write; counts the answers that come within a
    /// second.
    fn answers(mut client: TcpStream) -> usize {
        client.write_all(THREE).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = client.read(&mut chunk) {
            got.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&got).matches("HTTP/1.1 ").count()
    }

    /// Three requests in one write arrive in one read and get one answer from the server that
    /// takes a read for a request; stage 07, which frames by the head's empty line and the
    /// body's length, answers all three, in order.
    #[test]
    fn the_end_of_a_read_is_not_the_end_of_a_request() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || serve(listener.accept().unwrap().0));
        assert_eq!(answers(TcpStream::connect(addr).unwrap()), 1);
        server.join().unwrap();

        let stage = crate::common::Stage::start(
            env!("CARGO_BIN_EXE_07_keep_alive"),
            &["--work-ms", "0", "--quiet"],
        );
        assert_eq!(answers(stage.connect()), 3);
    }
}

/// The load generator's flags as read from its clap definitions: every one it has, and only
/// those, so that a flag the book names is checked against the real list.
#[test]
fn the_load_generators_flags_are_read_from_its_definitions() {
    let flags = loadgen_flags();
    for flag in [
        "--url",
        "--scenario",
        "--clients",
        "--idle-reconnect",
        "--trickle-ms",
        "--held-rate",
        "--connect-timeout-ms",
        "--json-file",
        "--no-server-stats",
        "--trace",
        "--series",
        "--no-live",
    ] {
        assert!(flags.contains(flag), "{flag} missing from {flags:?}");
    }
    for flag in &flags {
        assert_eq!(long_flag(flag), Some(flag.as_str()), "not a flag: {flag}");
    }
}

#[path = "../docs/examples/tiny_runtime.rs"]
#[allow(dead_code)] // its `main` is for `cargo run --example`; the tests call `serve_on`
mod tiny_runtime;

/// Chapter 10's first listing, `docs/examples/tiny_runtime.rs`: a runtime of its own (an
/// executor, a reactor on mio, one timer) and a hello server of `async fn`s on it.
mod chapter_10_tiny_runtime {
    use super::tiny_runtime::{block_on, serve_on, ANSWER};
    use std::future::poll_fn;
    use std::io::Write;
    use std::net::TcpStream;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::task::Poll;
    use std::thread;
    use std::time::Duration;

    use super::tiny_servers::{self, answer, Running, HELLO, REQUEST};

    /// The answer is the same bytes as chapter 6's tiny loop sends.
    #[test]
    fn the_answer_is_the_tiny_loops() {
        assert_eq!(ANSWER, HELLO);
        assert_eq!(ANSWER, super::tiny_loop::ANSWER);
    }

    /// Twenty clients at once, 200 ms of work each, one thread (`serve_on` starts none): each
    /// gets exactly the answer, none sooner than the work, and all of them in well under the
    /// 4 s that serving them one after another would take. Each `sleep(work).await` is a
    /// deadline in the runtime's timers, and the task waiting on it gives the thread back.
    #[test]
    fn twenty_clients_are_served_at_once_by_one_thread() {
        tiny_servers::twenty_clients_at_once(serve_on);
    }

    /// A request sent in three writes, its blank line split between the last two: the task
    /// waits at `read().await` for each part, nothing comes back before the blank line is
    /// complete, and exactly one answer after it.
    #[test]
    fn a_request_split_across_writes_is_answered_once_complete() {
        tiny_servers::a_request_split_across_writes(serve_on);
    }

    /// A head of 3000 bytes sent at once is one edge-triggered event and three reads of the
    /// server's 1 KiB buffer: answered, because a task waits only after `WouldBlock`.
    #[test]
    fn a_head_longer_than_one_read_sent_at_once_is_answered() {
        tiny_servers::a_head_longer_than_one_read(serve_on);
    }

    /// A request whose FIN comes with it (the client writes, then shuts its side) is answered:
    /// `serve` stops reading at the blank line, and the answer still goes out.
    #[test]
    fn a_request_that_comes_with_its_fin_is_answered() {
        let server = Running::start(serve_on, Duration::from_millis(50));
        let mut client = TcpStream::connect(server.addr).unwrap();
        client.write_all(REQUEST).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&answer(&mut client)),
            String::from_utf8_lossy(HELLO)
        );
        server.stop();
    }

    /// A `Waker` used on another thread (as the kitchen of stage 08 will) puts its task back
    /// on the ready queue and rings the bell: `block_on`, waiting in `poll` with no socket and
    /// no timer to wake it, wakes up and runs the task to its end.
    #[test]
    fn a_wake_from_another_thread_ends_the_wait() {
        let (finished, ended) = mpsc::channel();
        thread::spawn(move || {
            let done = Arc::new(AtomicBool::new(false));
            let mut helper = None;
            let result = block_on(poll_fn(|cx| {
                if done.load(Ordering::Acquire) {
                    return Poll::Ready(Ok(()));
                }
                let (done, waker) = (Arc::clone(&done), cx.waker().clone());
                helper.get_or_insert_with(|| {
                    thread::spawn(move || {
                        thread::sleep(Duration::from_millis(100));
                        done.store(true, Ordering::Release);
                        waker.wake();
                    })
                });
                Poll::Pending
            }));
            finished.send(result.is_ok()).unwrap();
        });
        let ended = ended.recv_timeout(Duration::from_secs(5));
        assert_eq!(ended, Ok(true), "block_on never saw the wake");
    }

    /// What chapter 10 says the tiny runtime prints at start and answers to `curl -i` is what
    /// the code prints and sends.
    #[test]
    fn chapter_10_shows_what_the_code_prints() {
        let chapter = super::read(&super::root().join("docs/10-async.md"));
        let code = super::read(&super::root().join("docs/examples/tiny_runtime.rs"));
        assert!(code.contains(r#""tiny_runtime listening on http://{addr}""#));
        assert!(code.contains(r#"StdListener::bind("127.0.0.1:1731")"#));
        assert!(chapter.contains("```text\ntiny_runtime listening on http://127.0.0.1:1731\n```"));
        let shown = String::from_utf8_lossy(ANSWER).replace("\r\n", "\n");
        assert!(
            chapter.contains(&format!("```text\n{shown}```")),
            "docs/10-async.md should show curl's output as a text block:\n{shown}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Sample logs, and the book's voice
// ---------------------------------------------------------------------------------------------

/// The shape of a stage's log line about a request or a connection
/// (`2026-11-25T19:44:39.174Z main 127.0.0.1:37110 "GET / HTTP/1.1" 200 1001ms, queued 0ms`):
/// the time, the thread, the peer and the request line made neutral, every number made `N`.
/// `None` for any other line.
fn log_shape(line: &str) -> Option<String> {
    let mut words = line.trim().splitn(4, ' ');
    let time = words.next()?.as_bytes();
    let is_time = time.len() == 24
        && time[10] == b'T'
        && time[23] == b'Z'
        && time[..4].iter().all(u8::is_ascii_digit);
    if !is_time {
        return None;
    }
    let _thread = words.next()?;
    words.next()?.parse::<std::net::SocketAddr>().ok()?;
    let rest = words.next()?;
    // The request line is quoted, with its own quotes escaped; it may hold digits and spaces.
    let rest = match rest.strip_prefix('"') {
        Some(quoted) => format!("\"LINE\"{}", &quoted[quoted.find("\" ")? + 1..]),
        None => rest.to_string(),
    };
    let mut shape = String::from("TIME THREAD PEER ");
    let mut digits = false;
    for c in rest.chars() {
        if !c.is_ascii_digit() {
            shape.push(c);
        } else if !digits {
            shape.push('N');
        }
        digits = c.is_ascii_digit();
    }
    Some(shape)
}

/// The sample logs in the chapters and the README have the format the stages print today: a
/// request served (with its `, queued Nms`, which chapter 4 reads as the proof that the queue
/// exists), a request whose client left, a connection that closed without a request. The
/// formats come from a real run of stage 01, not from a copy of `src/logging.rs`.
#[test]
fn sample_log_lines_have_the_format_the_stages_print() {
    use std::io::{Read, Write};
    let stage = common::Stage::start(env!("CARGO_BIN_EXE_01_single"), &["--work-ms", "300"]);
    // Closed without a request.
    drop(stage.connect());
    assert!(
        stage.wait_for_log("without a request"),
        "{}",
        stage.stderr()
    );
    // Served: stage 01's one thread works on it for 300 ms...
    let mut served = stage.connect();
    served.write_all(common::GET_CLOSE).unwrap();
    // ...while this client, in the backlog, sends its request and half-closes. When its turn
    // comes its FIN is already there, so it is abandoned however busy the machine is.
    let mut gone = stage.connect();
    gone.write_all(common::GET_CLOSE).unwrap();
    common::finish_sending(&gone);
    assert!(common::read_to_close(&mut served).starts_with(b"HTTP/1.1 200 OK"));
    let _ = gone.read_to_end(&mut Vec::new());
    assert!(stage.wait_for_log("queued"), "{}", stage.stderr());
    assert!(stage.wait_for_log("abandoned"), "{}", stage.stderr());
    let printed: BTreeSet<String> = stage.stderr().lines().filter_map(log_shape).collect();
    assert_eq!(printed.len(), 3, "three kinds of line: {printed:#?}");

    let mut files = book_files();
    files.push(root().join("README.md"));
    let mut wrong = Vec::new();
    let mut samples = 0;
    for file in &files {
        for (i, line) in read(file).lines().enumerate() {
            let Some(shape) = log_shape(line) else {
                continue;
            };
            samples += 1;
            if !printed.contains(&shape) {
                wrong.push(format!("{}:{}: {}", relative(file), i + 1, line.trim()));
            }
        }
    }
    assert!(samples > 10, "found only {samples} sample log lines");
    assert!(
        wrong.is_empty(),
        "sample log lines that no stage prints in this form (paste them again from a real \
         run):\n{}\nthe forms a stage prints:\n{printed:#?}",
        wrong.join("\n")
    );
}

/// Phrases about how the project itself came to be: the issues and sessions it was built in,
/// the seed it grew from, its earlier versions. A learner knows none of them, and the book
/// speaks to the learner. Each phrase is matched as whole words, case aside; "issue" is also
/// caught when a number follows it (`issue 12`, `issue #12`).
const HISTORY_PHRASES: &[&str] = &[
    "the seed of this",
    "seed of this project",
    "the project's seed",
    "the issue",
    "this issue",
    "this session",
    "the session",
    "a session of",
    "the project was asked",
    "asked for this stage",
    "first version of this stage",
    "first version of this book",
];

/// Where `phrase` occurs in `text` (both lowercase) as whole words.
fn whole_word_matches(text: &str, phrase: &str) -> Vec<usize> {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    text.match_indices(phrase)
        .map(|(at, _)| at)
        .filter(|&at| {
            !word(text[..at].chars().next_back()) && !word(text[at + phrase.len()..].chars().next())
        })
        .collect()
}

/// The book and the README speak to a learner, in their own voice: never of "the issue" that
/// asked for something, "the seed" of the project, the session it was written in. (A reader
/// meets `requests.Session` and "the first request" untroubled: the phrases are whole words.)
#[test]
fn the_book_does_not_speak_of_its_own_history() {
    let mut files = book_files();
    files.push(root().join("README.md"));
    let mut found = Vec::new();
    for file in &files {
        for (i, line) in read(file).lines().enumerate() {
            let lower = line.to_lowercase();
            let mut hits: Vec<&str> = HISTORY_PHRASES
                .iter()
                .copied()
                .filter(|phrase| !whole_word_matches(&lower, phrase).is_empty())
                .collect();
            let numbered = whole_word_matches(&lower, "issue").into_iter().any(|at| {
                let after = &lower[at + "issue".len()..];
                after.starts_with([' ', '#'])
                    && after
                        .trim_start_matches([' ', '#'])
                        .starts_with(|c: char| c.is_ascii_digit())
            });
            if numbered {
                hits.push("issue N");
            }
            if !hits.is_empty() {
                found.push(format!(
                    "{}:{}: {hits:?}: {}",
                    relative(file),
                    i + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "say it in the book's own voice, to a learner (what the idea is, what the target is), \
         not as the project's history:\n{}",
        found.join("\n")
    );
}

/// The phrase matcher itself: whole words only, so that prose which merely contains the
/// letters passes.
#[test]
fn history_phrases_match_whole_words_only() {
    assert_eq!(whole_word_matches("the issue that asked", "the issue"), [0]);
    assert!(whole_word_matches("see the issues list", "the issue").is_empty());
    assert!(whole_word_matches("requests.session()", "the session").is_empty());
    assert!(whole_word_matches("bathe issue", "the issue").is_empty());
    assert_eq!(whole_word_matches("as issue 12 said", "issue"), [3]);
}
