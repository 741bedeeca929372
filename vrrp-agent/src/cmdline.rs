//! Command lines as keepalived users write them: `notify_master
//! "/etc/vrrp-agent/redis-master.sh 192.0.2.2 6379"`, split into an argv
//! with keepalived's quoting rules, and checked before the daemon starts.
//!
//! # keepalived's rules (2.2.7, `keepalived.conf(5)` "Quoted strings";
//! `lib/parser.c` `alloc_strvec_quoted_escaped`)
//!
//! - Unquoted whitespace (space, `\t`, `\f`, `\n`, `\r`, `\v`) separates
//!   words.
//! - `"` and `'` open a quoted part that ends at the same quote character;
//!   the quotes are removed and the whitespace inside is kept. A quoted part
//!   joins the text around it into one word (`a"b c"d` is `ab cd`), and `''`
//!   is an empty word.
//! - A backslash escapes, *also inside single quotes* (unlike the shell):
//!   `\a \b \E \f \n \r \t \v`, `\nnn` (1 to 3 octal digits), `\xH..` (hex
//!   digits, the byte keeps the low 8 bits), `\cC` (control-C); any other
//!   `\C` is `C` itself, so `\\`, `\"`, `\'` and `\ ` are literal.
//! - A missing closing quote or a trailing lone backslash is an error.
//!
//! In TOML the outer quotes are TOML's, so the string handed to [`parse`] is
//! what keepalived re-parses after its own outer quotes are gone.
//!
//! # Pre-flight (`vrrp-agent check`)
//!
//! [`preflight`] resolves `argv[0]` (a bare name is searched in
//! [`SAFE_PATH`], the `PATH` scripts run with) and checks that it is a
//! regular file the runner may execute (keepalived's `is_executable`). It
//! also reports keepalived's "Unsafe permissions found for script" condition
//! as a warning: a path component not owned by root, or a file or a
//! non-sticky directory writable by a non-root group or by others, lets
//! another user change what the (root) daemon runs.

use std::{
    ffi::{OsStr, OsString},
    os::unix::{
        ffi::{OsStrExt, OsStringExt},
        fs::MetadataExt,
    },
    path::{Path, PathBuf},
};

/// The `PATH` checks and scripts run with (their environment is cleared),
/// and where a bare command name is looked up.
pub const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a command line cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdlineError {
    /// Only whitespace.
    #[error("empty command line")]
    Empty,
    /// A quote was opened and never closed.
    #[error("missing closing {quote} in command line")]
    UnclosedQuote {
        /// The quote character, `"` or `'`.
        quote: char,
    },
    /// The line ends in a lone backslash.
    #[error("command line ends with a lone backslash")]
    TrailingBackslash,
}

/// Splits `line` into an argv with keepalived's quoting and escape rules.
pub fn parse(line: &str) -> Result<Vec<OsString>, CmdlineError> {
    let bytes = line.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let mut word = Vec::new();
        let mut quote: Option<u8> = None;
        while i < bytes.len() {
            let b = bytes[i];
            match (b, quote) {
                (b'\\', _) => {
                    let (byte, next) = unescape(bytes, i + 1)?;
                    word.push(byte);
                    i = next;
                }
                (q, Some(open)) if q == open => {
                    quote = None;
                    i += 1;
                }
                (b'"' | b'\'', None) => {
                    quote = Some(b);
                    i += 1;
                }
                (b, None) if is_space(b) => break,
                (b, _) => {
                    word.push(b);
                    i += 1;
                }
            }
        }
        if let Some(q) = quote {
            return Err(CmdlineError::UnclosedQuote {
                quote: char::from(q),
            });
        }
        words.push(OsString::from_vec(word));
    }
    if words.is_empty() {
        return Err(CmdlineError::Empty);
    }
    Ok(words)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x0c | b'\n' | b'\r' | 0x0b)
}

/// Decodes the escape whose character is at `bytes[at]` (just after the
/// backslash); returns the byte and the index after the escape.
fn unescape(bytes: &[u8], at: usize) -> Result<(u8, usize), CmdlineError> {
    let Some(&c) = bytes.get(at) else {
        return Err(CmdlineError::TrailingBackslash);
    };
    let is_octal = |b: Option<&u8>| matches!(b, Some(b'0'..=b'7'));
    match c {
        b'x' if bytes.get(at + 1).is_some_and(u8::is_ascii_hexdigit) => {
            let mut v: u8 = 0;
            let mut j = at + 1;
            while let Some(d) = bytes.get(j).and_then(|b| char::from(*b).to_digit(16)) {
                // keepalived shifts into a char: only the low 8 bits survive.
                v = (v << 4) | d as u8;
                j += 1;
            }
            Ok((v, j))
        }
        b'c' if at + 1 < bytes.len() => Ok((bytes[at + 1] & 0x1f, at + 2)),
        b'0'..=b'7' => {
            let mut v = c - b'0';
            let mut j = at + 1;
            for _ in 0..2 {
                if !is_octal(bytes.get(j)) {
                    break;
                }
                v = v.wrapping_shl(3).wrapping_add(bytes[j] - b'0');
                j += 1;
            }
            Ok((v, j))
        }
        b'a' => Ok((0x07, at + 1)),
        b'b' => Ok((0x08, at + 1)),
        b'E' => Ok((0x1b, at + 1)),
        b'f' => Ok((0x0c, at + 1)),
        b'n' => Ok((b'\n', at + 1)),
        b'r' => Ok((b'\r', at + 1)),
        b't' => Ok((b'\t', at + 1)),
        b'v' => Ok((0x0b, at + 1)),
        other => Ok((other, at + 1)),
    }
}

/// Who a command runs as, for the executable test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

impl RunAs {
    /// root:root, the default for scripts and `exec` checks.
    pub const ROOT: RunAs = RunAs { uid: 0, gid: 0 };
}

/// Why a command cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreflightError {
    /// The argv is empty.
    #[error("empty command")]
    Empty,
    /// `argv[0]` does not exist (a bare name: not in any `PATH` directory).
    #[error("command not found: {program:?} (a bare name is looked up in {SAFE_PATH})")]
    NotFound {
        /// `argv[0]` as written.
        program: PathBuf,
    },
    /// It exists but is not a regular file.
    #[error("{path:?} is not a regular file")]
    NotAFile {
        /// The resolved path.
        path: PathBuf,
    },
    /// It exists but the runner may not execute it.
    #[error("{path:?} is not executable by uid {uid} (chmod +x?)")]
    NotExecutable {
        /// The resolved path.
        path: PathBuf,
        /// The user it would run as.
        uid: u32,
    },
}

/// A warning that does not stop the command from running.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreflightWarning {
    /// keepalived's "Unsafe permissions found for script".
    #[error("unsafe permissions: {path:?} {why}; another user could change what runs as root")]
    UnsafePermissions {
        /// The path component at fault.
        path: PathBuf,
        /// What is wrong with it.
        why: UnsafeWhy,
    },
}

/// What makes a path component unsafe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafeWhy {
    /// Not owned by root.
    NotRootOwned,
    /// Writable by its group, which is not root.
    GroupWritable,
    /// Writable by everyone.
    WorldWritable,
}

impl std::fmt::Display for UnsafeWhy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UnsafeWhy::NotRootOwned => "is not owned by root",
            UnsafeWhy::GroupWritable => "is writable by a non-root group",
            UnsafeWhy::WorldWritable => "is writable by others",
        })
    }
}

/// A command that passed the pre-flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    /// `argv[0]` resolved to a path.
    pub program: PathBuf,
    /// Things worth telling the operator.
    pub warnings: Vec<PreflightWarning>,
}

/// Checks that `argv[0]` exists and that `run_as` may execute it, and looks
/// for unsafe permissions on the path (see the module doc).
pub fn preflight<S: AsRef<OsStr>>(argv: &[S], run_as: RunAs) -> Result<Preflight, PreflightError> {
    let program = argv.first().ok_or(PreflightError::Empty)?.as_ref();
    let path = resolve(Path::new(program), run_as)?;
    let warnings = unsafe_components(&path)
        .into_iter()
        .map(|(path, why)| PreflightWarning::UnsafePermissions { path, why })
        .collect();
    Ok(Preflight {
        program: path,
        warnings,
    })
}

/// Resolves `program`: as given when it has a `/`, else the first match in
/// [`SAFE_PATH`] that `run_as` may execute.
pub fn resolve(program: &Path, run_as: RunAs) -> Result<PathBuf, PreflightError> {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return check_executable(program, run_as).map(|()| program.to_owned());
    }
    let mut first_error = None;
    for dir in SAFE_PATH.split(':') {
        let candidate = Path::new(dir).join(program);
        match check_executable(&candidate, run_as) {
            Ok(()) => return Ok(candidate),
            Err(PreflightError::NotFound { .. }) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| PreflightError::NotFound {
        program: program.to_owned(),
    }))
}

fn check_executable(path: &Path, run_as: RunAs) -> Result<(), PreflightError> {
    let meta = std::fs::metadata(path).map_err(|_| PreflightError::NotFound {
        program: path.to_owned(),
    })?;
    if !meta.is_file() {
        return Err(PreflightError::NotAFile {
            path: path.to_owned(),
        });
    }
    if !is_executable(meta.mode(), meta.uid(), meta.gid(), run_as) {
        return Err(PreflightError::NotExecutable {
            path: path.to_owned(),
            uid: run_as.uid,
        });
    }
    Ok(())
}

/// keepalived's `is_executable`: root needs any x bit; others the bit of the
/// class (owner, group, other) they fall in.
pub fn is_executable(mode: u32, file_uid: u32, file_gid: u32, run_as: RunAs) -> bool {
    const XUSR: u32 = 0o100;
    const XGRP: u32 = 0o010;
    const XOTH: u32 = 0o001;
    if run_as.uid == 0 {
        mode & (XUSR | XGRP | XOTH) != 0
    } else if run_as.uid == file_uid {
        mode & XUSR != 0
    } else if run_as.gid == file_gid {
        mode & XGRP != 0
    } else {
        mode & XOTH != 0
    }
}

/// keepalived's `check_security` rule for one path component (`lstat`
/// data): unsafe when not owned by root, or when it is a file or a directory
/// without the sticky bit and is writable by a non-root group or by others.
pub fn unsafe_why(mode: u32, uid: u32, gid: u32, is_dir: bool) -> Option<UnsafeWhy> {
    const STICKY: u32 = 0o1000;
    const WGRP: u32 = 0o020;
    const WOTH: u32 = 0o002;
    if uid != 0 {
        return Some(UnsafeWhy::NotRootOwned);
    }
    if is_dir && mode & STICKY != 0 {
        return None;
    }
    if mode & WOTH != 0 {
        Some(UnsafeWhy::WorldWritable)
    } else if gid != 0 && mode & WGRP != 0 {
        Some(UnsafeWhy::GroupWritable)
    } else {
        None
    }
}

/// Every unsafe component of `path`, from `/` down to the file itself
/// (symlinks are judged themselves, not followed, like keepalived).
fn unsafe_components(path: &Path) -> Vec<(PathBuf, UnsafeWhy)> {
    let mut out = Vec::new();
    let mut prefix = PathBuf::new();
    for part in path.components() {
        prefix.push(part);
        let Ok(meta) = std::fs::symlink_metadata(&prefix) else {
            continue;
        };
        let is_dir = meta.is_dir();
        let is_link = meta.file_type().is_symlink();
        // A symlink's own mode is always 0777 on Linux; only its owner counts.
        let mode = if is_link { 0 } else { meta.mode() };
        if let Some(why) = unsafe_why(mode, meta.uid(), meta.gid(), is_dir) {
            out.push((prefix.clone(), why));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        parse(line)
            .unwrap()
            .into_iter()
            .map(|w| w.into_string().unwrap())
            .collect()
    }

    #[test]
    fn whitespace_separates_and_repeats_collapse() {
        assert_eq!(
            words("  /etc/x.sh\t192.0.2.2   6379 \n"),
            ["/etc/x.sh", "192.0.2.2", "6379"]
        );
    }

    #[test]
    fn quotes_keep_spaces_and_join_adjacent_text() {
        assert_eq!(
            words("/path/script arg 'two words'"),
            ["/path/script", "arg", "two words"]
        );
        assert_eq!(words(r#"a"b c"d"#), ["ab cd"]);
        assert_eq!(words(r#"'it"s' "it's""#), [r#"it"s"#, "it's"]);
        assert_eq!(words("x '' y"), ["x", "", "y"]);
    }

    #[test]
    fn backslash_escapes_also_inside_single_quotes() {
        assert_eq!(words(r"a\ b"), ["a b"]);
        assert_eq!(words(r"'a\'b'"), ["a'b"]);
        assert_eq!(words(r#""a\"b""#), [r#"a"b"#]);
        assert_eq!(words(r"x\\y"), [r"x\y"]);
        assert_eq!(words(r"\t\n\E"), ["\t\n\u{1b}"]);
        assert_eq!(words(r"\101\x41\cA\q"), ["AA\u{1}q"]);
        // \x keeps the low 8 bits of however many hex digits follow.
        assert_eq!(words(r"\x1041"), ["A"]);
        // \x without a hex digit is a plain x.
        assert_eq!(words(r"\xg"), ["xg"]);
    }

    #[test]
    fn errors() {
        assert_eq!(parse("  \t"), Err(CmdlineError::Empty));
        assert_eq!(
            parse("a 'b c"),
            Err(CmdlineError::UnclosedQuote { quote: '\'' })
        );
        assert_eq!(
            parse(r#"a "b"#),
            Err(CmdlineError::UnclosedQuote { quote: '"' })
        );
        assert_eq!(parse(r"a \"), Err(CmdlineError::TrailingBackslash));
    }

    #[test]
    fn executable_follows_keepalived() {
        let user = RunAs {
            uid: 1000,
            gid: 1000,
        };
        assert!(is_executable(0o100, 5, 5, RunAs::ROOT));
        assert!(!is_executable(0o644, 0, 0, RunAs::ROOT));
        assert!(is_executable(0o700, 1000, 5, user));
        assert!(
            !is_executable(0o070, 1000, 1000, user),
            "owner class decides"
        );
        assert!(is_executable(0o010, 5, 1000, user));
        assert!(!is_executable(0o710, 5, 6, user));
        assert!(is_executable(0o001, 5, 6, user));
    }

    #[test]
    fn unsafe_rule_follows_keepalived() {
        assert_eq!(unsafe_why(0o755, 0, 0, false), None);
        assert_eq!(unsafe_why(0o775, 0, 0, false), None, "group root may write");
        assert_eq!(
            unsafe_why(0o775, 0, 4, false),
            Some(UnsafeWhy::GroupWritable)
        );
        assert_eq!(
            unsafe_why(0o757, 0, 0, false),
            Some(UnsafeWhy::WorldWritable)
        );
        assert_eq!(
            unsafe_why(0o755, 1000, 0, false),
            Some(UnsafeWhy::NotRootOwned)
        );
        assert_eq!(unsafe_why(0o1777, 0, 0, true), None, "sticky /tmp is fine");
        assert_eq!(
            unsafe_why(0o777, 0, 0, true),
            Some(UnsafeWhy::WorldWritable)
        );
    }

    #[test]
    fn preflight_resolves_bare_names_and_rejects_missing() {
        let ok = preflight(&["true"], RunAs::ROOT).unwrap();
        assert!(ok.program.ends_with("true"), "{ok:?}");
        assert!(matches!(
            preflight(&["/nonexistent/vrrp-agent-x"], RunAs::ROOT),
            Err(PreflightError::NotFound { .. })
        ));
        assert!(matches!(
            preflight(&["vrrp-agent-no-such-command"], RunAs::ROOT),
            Err(PreflightError::NotFound { .. })
        ));
        assert!(matches!(
            preflight(&["/etc"], RunAs::ROOT),
            Err(PreflightError::NotAFile { .. })
        ));
        assert_eq!(
            preflight::<&str>(&[], RunAs::ROOT),
            Err(PreflightError::Empty)
        );
    }
}
