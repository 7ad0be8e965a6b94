//! What a list of policy paths on a command line names: files as given,
//! a directory by the policy files in it, test files left out, `-` for
//! stdin.
//!
//! Policy files end in `.writ`, `.yaml` or `.yml`; test files
//! (`NAME.test.yaml`, or the older `NAME.decisions.yaml`) are YAML too, so a
//! shell glob such as `policies/*.yaml` names both. A test file is never a
//! policy, so it is left out (and the command says so) rather than read as
//! one and refused; `writ test` runs it.

use std::path::{Path, PathBuf};

/// The suffixes of test files, in the order `writ test` tries them.
pub const TEST_SUFFIXES: [&str; 4] = [
    ".test.yaml",
    ".test.yml",
    ".decisions.yaml",
    ".decisions.yml",
];

/// True for a test file's name (`support.test.yaml`).
#[must_use]
pub fn is_test_file(name: &str) -> bool {
    TEST_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// True for a policy file's name: `.writ`, `.yaml` or `.yml`, and not a test file.
#[must_use]
pub fn is_policy_file(name: &str) -> bool {
    let ext = Path::new(name).extension().and_then(|e| e.to_str());
    matches!(ext, Some(e) if ["writ", "yaml", "yml"].iter().any(|x| e.eq_ignore_ascii_case(x)))
        && !is_test_file(name)
}

/// The outcome of [`policy_paths`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PolicyPaths {
    /// The policy files, in order (`-` stays `-`: the caller reads stdin).
    pub files: Vec<PathBuf>,
    /// Test files that were named, and left out.
    pub skipped_tests: Vec<PathBuf>,
    /// Directories without a policy file.
    pub empty_dirs: Vec<PathBuf>,
}

/// Expands the paths of a command line: a directory becomes the policy
/// files directly in it (not in subdirectories: a policy set is merged into
/// one, and unrelated policies in a tree must not be), sorted by name; a
/// test file is left out; anything else (a file, a missing path, `-`) is
/// kept as given, so that reading it reports what is wrong.
#[must_use]
pub fn policy_paths(args: &[PathBuf]) -> PolicyPaths {
    let mut out = PolicyPaths::default();
    for p in args {
        let name = p.file_name().map(|n| n.to_string_lossy().to_string());
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| {
                    f.is_file()
                        && f.file_name()
                            .is_some_and(|n| is_policy_file(&n.to_string_lossy()))
                })
                .collect();
            found.sort();
            if found.is_empty() {
                out.empty_dirs.push(p.clone());
            }
            out.files.extend(found);
        } else if name.as_deref().is_some_and(is_test_file) {
            out.skipped_tests.push(p.clone());
        } else {
            out.files.push(p.clone());
        }
    }
    out
}

/// The name stdin's text is compiled under: `<stdin>.writ` when it reads
/// as the writ language, `<stdin>` (YAML) otherwise. A YAML policy is a
/// mapping, so its first line that is not blank or a comment starts with a
/// key and a colon (`name: support`, `writ: 1`) or with `---`, `%` or `{`;
/// the writ language starts with a keyword and a name (`policy "support"`,
/// `rule refund_small: ...`).
#[must_use]
pub fn stdin_name(text: &str) -> &'static str {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("//"));
    let yaml = first.is_none_or(|l| {
        l.starts_with("---")
            || l.starts_with('%')
            || l.starts_with('{')
            || l.split_once(':').is_some_and(|(key, rest)| {
                let key = key.trim_matches(|c| c == '"' || c == '\'');
                !key.is_empty()
                    && !key.contains(char::is_whitespace)
                    && (rest.is_empty() || rest.starts_with(char::is_whitespace))
            })
    });
    if yaml { "<stdin>" } else { "<stdin>.writ" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_files_are_told_from_policies() {
        assert!(is_test_file("support.test.yaml"));
        assert!(is_test_file("seeds/aegis.decisions.yml"));
        assert!(!is_test_file("support.yaml"));
        assert!(is_policy_file("sekuire.yml"));
        assert!(is_policy_file("support.WRIT"));
        assert!(!is_policy_file("support.decisions.yaml"));
        assert!(!is_policy_file("requests.jsonl"));
        assert!(!is_policy_file("yaml"));
    }

    #[test]
    fn directories_expand_to_their_policy_files_sorted() {
        let dir = std::env::temp_dir().join(format!("writ-inputs-{}", std::process::id()));
        let sub = dir.join("sub");
        let empty = dir.join("empty");
        for d in [&sub, &empty] {
            std::fs::create_dir_all(d).unwrap();
        }
        for f in [
            "b.yaml",
            "a.writ",
            "c.yml",
            "a.test.yaml",
            "notes.md",
            "sub/d.yaml",
        ] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let got = policy_paths(&[
            dir.clone(),
            empty.clone(),
            dir.join("x.decisions.yaml"),
            PathBuf::from("-"),
        ]);
        assert_eq!(
            got.files,
            vec![
                dir.join("a.writ"),
                dir.join("b.yaml"),
                dir.join("c.yml"),
                PathBuf::from("-")
            ]
        );
        assert_eq!(got.skipped_tests, vec![dir.join("x.decisions.yaml")]);
        assert_eq!(got.empty_dirs, vec![empty]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stdin_is_yaml_or_the_writ_language_by_its_first_line() {
        assert_eq!(stdin_name("writ: 1\npolicy: {}\n"), "<stdin>");
        assert_eq!(stdin_name("# a comment\n\nname: refunds\n"), "<stdin>");
        assert_eq!(stdin_name("---\nname: x\n"), "<stdin>");
        assert_eq!(stdin_name("\"name\": x\n"), "<stdin>");
        assert_eq!(stdin_name("rules:\n  - action: x\n"), "<stdin>");
        assert_eq!(stdin_name(""), "<stdin>");
        assert_eq!(
            stdin_name("# c\npolicy \"support\" { default deny }\n"),
            "<stdin>.writ"
        );
        assert_eq!(
            stdin_name("rule refund_small: allow \"tool:call\"\n"),
            "<stdin>.writ"
        );
        assert_eq!(stdin_name("agent \"a\" { roles [x] }\n"), "<stdin>.writ");
    }
}
