//! Every stage's command line: its `--help` lists exactly the knobs of its idea, a flag of
//! another stage or a typo is refused with status 2 in a few lines (a suggestion, a pointer to
//! `--help`, no help screen), both spellings of a value work, and a value out of range names
//! its flag.

mod common;

use std::process::{Command, Output};

use common::{Stage, ALL_STAGES};

/// The flags every stage has.
const COMMON: &[&str] = &[
    "--addr",
    "--work-ms",
    "--cpu-ms",
    "--body-bytes",
    "--backlog",
    "--drain-ms",
    "--quiet",
    "--help",
];

/// The flags each stage adds to [`COMMON`]: the knobs of its idea.
const OWN: &[(&str, &[&str])] = &[
    ("01_single", &[]),
    ("02_thread_per_conn", &[]),
    ("03_semaphore", &["--max-conns"]),
    ("04_thread_pool", &["--workers", "--queue"]),
    (
        "05_timeouts",
        &[
            "--workers",
            "--queue",
            "--header-timeout-ms",
            "--write-timeout-ms",
        ],
    ),
    (
        "06_event_loop",
        &["--max-conns", "--header-timeout-ms", "--write-timeout-ms"],
    ),
    (
        "07_keep_alive",
        &[
            "--max-conns",
            "--header-timeout-ms",
            "--write-timeout-ms",
            "--keep-alive-ms",
            "--max-requests",
        ],
    ),
    (
        "08_cpu_pool",
        &[
            "--max-conns",
            "--header-timeout-ms",
            "--write-timeout-ms",
            "--keep-alive-ms",
            "--max-requests",
            "--cpu-threads",
            "--cpu-queue",
        ],
    ),
    (
        "09_loop_per_core",
        &[
            "--max-conns",
            "--header-timeout-ms",
            "--write-timeout-ms",
            "--keep-alive-ms",
            "--max-requests",
            "--cpu-threads",
            "--cpu-queue",
            "--loops",
            "--shared-listener",
        ],
    ),
    (
        "10_async",
        &[
            "--max-conns",
            "--header-timeout-ms",
            "--write-timeout-ms",
            "--keep-alive-ms",
            "--max-requests",
            "--cpu-threads",
            "--cpu-queue",
            "--loops",
        ],
    ),
    (
        "11_tokio",
        &[
            "--max-conns",
            "--header-timeout-ms",
            "--write-timeout-ms",
            "--keep-alive-ms",
            "--max-requests",
            "--cpu-threads",
            "--cpu-queue",
            "--workers",
            "--spawn-blocking",
            "--current-thread",
        ],
    ),
];

/// A value each stage-only flag accepts (small, so that no stage starts a thousand threads).
const VALID: &[(&str, &str)] = &[
    ("--max-conns", "50"),
    ("--workers", "2"),
    ("--queue", "3"),
    ("--header-timeout-ms", "4000"),
    ("--write-timeout-ms", "4000"),
    ("--keep-alive-ms", "4000"),
    ("--max-requests", "9"),
    ("--cpu-threads", "2"),
    ("--cpu-queue", "5"),
    ("--loops", "2"),
];

/// Stage-only flags that take no value.
const SWITCHES: &[&str] = &["--shared-listener", "--spawn-blocking", "--current-thread"];

/// For each flag that takes a number, a value just outside what it accepts.
const OUT_OF_RANGE: &[(&str, &str)] = &[
    ("--work-ms", "600001"),
    ("--cpu-ms", "60001"),
    ("--body-bytes", "67108865"),
    ("--backlog", "0"),
    ("--drain-ms", "600001"),
    ("--max-conns", "0"),
    ("--workers", "0"),
    ("--queue", "100001"),
    ("--header-timeout-ms", "0"),
    ("--write-timeout-ms", "0"),
    ("--keep-alive-ms", "0"),
    ("--max-requests", "0"),
    ("--cpu-threads", "1025"),
    ("--cpu-queue", "0"),
    ("--loops", "0"),
];

fn run(exe: &str, args: &[&str]) -> Output {
    Command::new(exe).args(args).output().unwrap()
}

/// The flags of `name`, in the order its help lists them.
fn flags_of(name: &str) -> Vec<&'static str> {
    let (_, own) = OWN.iter().find(|(stage, _)| *stage == name).unwrap();
    COMMON.iter().chain(own.iter()).copied().collect()
}

/// The long flags a help text lists: the first `--name` of each line that starts with `-`.
fn listed(help: &str) -> Vec<String> {
    let mut flags: Vec<String> = help
        .lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with('-'))
        .filter_map(|line| {
            let at = line.find("--")?;
            let name = &line[at..];
            let end = name
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(name.len());
            Some(name[..end].to_string())
        })
        .collect();
    flags.sort();
    flags
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// `--help` (and `-h`) exits 0 and lists exactly the flags of the stage, each with its
/// default, and says once what the signals do.
#[test]
fn help_lists_exactly_the_flags_of_the_stage() {
    for &(name, exe) in ALL_STAGES {
        let out = run(exe, &["--help"]);
        assert!(out.status.success(), "{name}: {:?}", out.status);
        let help = text(&out.stdout);
        let mut expected: Vec<String> = flags_of(name).iter().map(|f| f.to_string()).collect();
        expected.sort();
        assert_eq!(listed(&help), expected, "{name}:\n{help}");
        assert!(help.starts_with(&format!(
            "{}\n\nUsage: {name} [OPTIONS]\n",
            help.lines().next().unwrap()
        )));
        assert_eq!(help.matches("SIGTERM").count(), 1, "{name}:\n{help}");
        assert!(help.contains("A second one, any of the three"), "{help}");
        for line in help.lines() {
            assert!(line.chars().count() <= 100, "{name}: too wide: {line}");
        }
        let short = run(exe, &["-h"]);
        assert!(short.status.success());
        assert_eq!(text(&short.stdout), help, "{name}: -h and --help differ");
    }
}

/// A flag that only other stages have is refused with status 2: clap's one-line error and a
/// pointer to `--help`, and no help screen.
#[test]
fn a_flag_of_another_stage_is_refused() {
    let all: Vec<&str> = OWN
        .iter()
        .flat_map(|(_, own)| own.iter().copied())
        .collect();
    for &(name, exe) in ALL_STAGES {
        let has = flags_of(name);
        for flag in all.iter().filter(|flag| !has.contains(flag)) {
            let out = run(exe, &[flag, "3"]);
            assert_eq!(out.status.code(), Some(2), "{name} {flag}");
            let stderr = text(&out.stderr);
            assert!(
                stderr.starts_with(&format!("error: unexpected argument '{flag}' found\n")),
                "{name} {flag}: {stderr}"
            );
            assert!(
                stderr.ends_with("For more information, try '--help'.\n"),
                "{stderr}"
            );
            assert!(
                !stderr.contains("Options:"),
                "{name}: a help screen: {stderr}"
            );
            assert!(out.stdout.is_empty());
        }
    }
}

/// `--max-con 3`, a typo, gets the error, the suggestion of `--max-conns` in the stages that
/// have it, and a pointer to `--help`: four lines at most, blank lines aside.
#[test]
fn a_mistyped_flag_gets_a_suggestion_in_a_few_lines() {
    for &(name, exe) in ALL_STAGES {
        let out = run(exe, &["--max-con", "3"]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = text(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(lines.len() <= 4, "{name}: {stderr}");
        assert_eq!(lines[0], "error: unexpected argument '--max-con' found");
        assert_eq!(lines.last(), Some(&"For more information, try '--help'."));
        let suggests = stderr.contains("tip: a similar argument exists: '--max-conns'");
        assert_eq!(
            suggests,
            flags_of(name).contains(&"--max-conns"),
            "{name}: {stderr}"
        );
    }
    let out = run(env!("CARGO_BIN_EXE_03_semaphore"), &["--max-con", "3"]);
    assert_eq!(
        text(&out.stderr),
        "error: unexpected argument '--max-con' found\n\
         \n  tip: a similar argument exists: '--max-conns'\n\
         \nFor more information, try '--help'.\n"
    );
}

/// `--flag VALUE` and `--flag=VALUE` both work, for common flags and a stage's own: the stage
/// starts (the harness passes `--addr 127.0.0.1:0`) and `--body-bytes=5` shapes `GET /`.
#[test]
fn both_spellings_of_a_value_are_accepted() {
    for &(name, exe) in ALL_STAGES {
        let mut args = vec!["--work-ms".to_string(), "0".to_string()];
        args.push("--body-bytes=5".to_string());
        args.push("--quiet".to_string());
        for (i, flag) in flags_of(name)[COMMON.len()..].iter().enumerate() {
            // A switch (09's --shared-listener, 11's --spawn-blocking) takes no value: left out.
            let Some((_, value)) = VALID.iter().find(|(f, _)| f == flag) else {
                assert!(SWITCHES.contains(flag), "{flag}: no valid value listed");
                continue;
            };
            // Spelled one way, then the other.
            if i % 2 == 0 {
                args.push(format!("{flag}={value}"));
            } else {
                args.extend([flag.to_string(), value.to_string()]);
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stage = Stage::start(exe, &args);
        let reply = stage.get("/");
        assert_eq!(reply.status, 200, "{name}");
        assert_eq!(reply.body, "Hello", "{name}");
    }
}

/// A value outside a flag's range is refused with status 2, and the error names the flag.
#[test]
fn a_value_out_of_range_names_the_flag() {
    for &(name, exe) in ALL_STAGES {
        for flag in flags_of(name) {
            let Some((_, bad)) = OUT_OF_RANGE.iter().find(|(f, _)| *f == flag) else {
                continue;
            };
            let joined = format!("{flag}={bad}");
            for args in [&[flag, bad][..], &[&joined]] {
                let out = run(exe, args);
                assert_eq!(out.status.code(), Some(2), "{name} {args:?}");
                let stderr = text(&out.stderr);
                assert!(
                    stderr.starts_with(&format!("error: invalid value '{bad}' for '{flag} <")),
                    "{name} {args:?}: {stderr}"
                );
            }
        }
    }
}
