//! Reads keepalived.conf the way keepalived 2.2.7's `lib/parser.c` does and
//! returns a tree of statements, each with the file and line it came from.
//!
//! The grammar, as keepalived implements it:
//! - Line oriented. `#` and `!` start a comment anywhere outside a
//!   double-quoted string; `\#` and `\!` are a literal `#` / `!`.
//! - `{` and `}` outside double quotes split a line: `vrrp_instance VI_1 {`
//!   is the statement `vrrp_instance VI_1` followed by an opening brace, and
//!   `unicast_peer { 192.0.2.2 }` a block holding one statement. A block
//!   belongs to the statement before it; blocks may span included files.
//! - Words are separated by blanks; `"…"` and `'…'` group words and are
//!   removed, `\` escapes the next character (`alloc_strvec_quoted_escaped`).
//! - `include FILE` (and `includer`/`includem`/`includew`/`includeb`/
//!   `includea`): FILE is a glob, relative to the directory of the including
//!   file; matches are read in sorted order. `include` and `includer`
//!   matching nothing are not an error in keepalived (a note here);
//!   `includem`/`includew`/`includeb`/`includea` are.
//! - `@ID line` / `@^ID line`: the line counts only when the config id
//!   (keepalived's `-i`, default the host name up to the first dot) is / is
//!   not ID.
//! - `$NAME=VALUE` defines a parameter; `$NAME` followed by a blank and
//!   `${NAME}` are replaced by VALUE (recursively); an undefined parameter is
//!   left as it is.
//! - There is no general line continuation: a trailing `\` continues only a
//!   multi-line `$NAME=` definition. Those, and the `~SEQ`/`~LST` generators,
//!   are not read here: they are reported and the conversion fails.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use super::{ImportError, Note, Severity, Source};

/// One keepalived statement: its words, where it is, and its `{ }` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stmt {
    /// The words, quotes removed; never empty.
    pub words: Vec<String>,
    /// Where the statement starts.
    pub at: Source,
    /// The statements of the block that follows it, if any.
    pub block: Option<Vec<Stmt>>,
}

impl Stmt {
    /// The keyword (first word).
    pub fn keyword(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }

    /// The `n`-th word, if present.
    pub fn arg(&self, n: usize) -> Option<&str> {
        self.words.get(n).map(String::as_str)
    }
}

/// Options of the reader.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// keepalived's config id (`-i`), for `@ID` lines; `None` = the host
    /// name up to the first dot, as keepalived does.
    pub config_id: Option<String>,
}

/// A logical line: words, or a lone brace.
#[derive(Debug)]
enum Line {
    Words(Vec<String>, Source),
    Open(Source),
    Close(Source),
}

/// Include depth beyond which a loop is assumed.
const MAX_INCLUDE_DEPTH: usize = 32;
/// Block depth beyond which the braces are assumed broken (keepalived nests 4 deep).
const MAX_BLOCK_DEPTH: usize = 16;
/// Files read beyond which an include loop is assumed.
const MAX_FILES: usize = 1000;
/// Substitution rounds beyond which a recursive definition is assumed.
const MAX_SUBSTITUTIONS: usize = 64;

struct Reader {
    config_id: String,
    files_read: usize,
    defs: HashMap<String, String>,
    lines: Vec<Line>,
    notes: Vec<Note>,
}

/// Reads `path` and everything it includes into a statement tree, with the
/// notes (problems of the file itself) found on the way.
pub fn read(path: &Path, opts: &ReadOptions) -> Result<(Vec<Stmt>, Vec<Note>), ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        file: path.display().to_string(),
        source,
    })?;
    let config_id = opts.config_id.clone().unwrap_or_else(default_config_id);
    let r = Reader {
        config_id,
        files_read: 1,
        defs: HashMap::new(),
        lines: Vec::new(),
        notes: Vec::new(),
    };
    Ok(r.read_text(path, &text))
}

/// Builds the tree; `open` is the position of the brace that opened this
/// level (`None` at top level).
fn build(
    lines: &mut std::iter::Peekable<std::vec::IntoIter<Line>>,
    notes: &mut Vec<Note>,
    open: Option<&Source>,
    depth: usize,
) -> Vec<Stmt> {
    let mut out: Vec<Stmt> = Vec::new();
    while let Some(line) = lines.next() {
        match line {
            Line::Words(words, at) => out.push(Stmt {
                words,
                at,
                block: None,
            }),
            Line::Open(at) if depth >= MAX_BLOCK_DEPTH => notes.push(Note::new(
                &at,
                "{",
                Severity::Error,
                format!("blocks nested deeper than {MAX_BLOCK_DEPTH}; check the braces"),
            )),
            Line::Open(at) => {
                let inner = build(lines, notes, Some(&at), depth + 1);
                match out.last_mut() {
                    Some(s) if s.block.is_none() => s.block = Some(inner),
                    _ => notes.push(Note::new(
                        &at,
                        "{",
                        Severity::Error,
                        "a block without a keyword before it; check the braces",
                    )),
                }
            }
            Line::Close(at) => {
                if open.is_some() {
                    return out;
                }
                notes.push(Note::new(
                    &at,
                    "}",
                    Severity::Error,
                    "extra `}`; check the braces",
                ));
            }
        }
    }
    if let Some(at) = open {
        notes.push(Note::new(
            at,
            "{",
            Severity::Error,
            "this block is never closed; add the missing `}`",
        ));
    }
    out
}

impl Reader {
    /// Reads `text` (the contents of `path`) and what it includes.
    fn read_text(mut self, path: &Path, text: &str) -> (Vec<Stmt>, Vec<Note>) {
        self.file(path, text, 0);
        let mut lines = std::mem::take(&mut self.lines).into_iter().peekable();
        let stmts = build(&mut lines, &mut self.notes, None, 0);
        (stmts, self.notes)
    }

    fn note(&mut self, at: &Source, keyword: &str, severity: Severity, msg: impl Into<String>) {
        self.notes.push(Note::new(at, keyword, severity, msg));
    }

    fn file(&mut self, path: &Path, text: &str, depth: usize) {
        let file = path.display().to_string();
        for (i, raw) in text.lines().enumerate() {
            let at = Source {
                file: file.clone(),
                line: i + 1,
            };
            self.physical_line(path, raw, &at, depth);
        }
    }

    fn physical_line(&mut self, path: &Path, raw: &str, at: &Source, depth: usize) {
        let mut line = decomment(raw).trim().to_owned();
        if line.is_empty() {
            return;
        }
        let mut rounds = 0;
        loop {
            // Conditional configuration: `@ID rest` / `@^ID rest`.
            if let Some(rest) = line.strip_prefix('@') {
                let (negate, rest) = match rest.strip_prefix('^') {
                    Some(r) => (true, r),
                    None => (false, rest),
                };
                let Some((id, body)) = rest.split_once([' ', '\t']) else {
                    return;
                };
                if (id == self.config_id) == negate {
                    return;
                }
                line = body.trim().to_owned();
            }
            if line.starts_with('$')
                && let Some((name, value)) = definition(&line)
            {
                if value.ends_with('\\') {
                    self.note(
                        at,
                        &format!("${name}"),
                        Severity::Error,
                        "multi-line parameter definitions are not read by the importer; \
                         expand them by hand",
                    );
                    return;
                }
                self.defs.insert(name.to_owned(), value.to_owned());
                return;
            }
            if line.starts_with("~SEQ") || line.starts_with("~LST") {
                self.note(
                    at,
                    &line[..4],
                    Severity::Error,
                    "sequence/list generators are not read by the importer; expand them by hand",
                );
                return;
            }
            if self.defs.is_empty() || !line.contains('$') || rounds >= MAX_SUBSTITUTIONS {
                break;
            }
            let replaced = self.substitute(&line);
            if replaced == line {
                break;
            }
            line = decomment(&replaced).trim().to_owned();
            rounds += 1;
        }
        if let Some((kind, pattern)) = include(&line) {
            self.include(path, kind, pattern, at, depth);
            return;
        }
        self.split_braces(&line, at);
    }

    /// Replaces `${NAME}` and `$NAME` followed by a blank or the end of line.
    fn substitute(&self, line: &str) -> String {
        let mut out = String::with_capacity(line.len());
        let mut rest = line;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let (name, tail) = if let Some(b) = after.strip_prefix('{') {
                match b.find('}') {
                    Some(j) => (&b[..j], &b[j + 1..]),
                    None => ("", after),
                }
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                let tail = &after[end..];
                if tail.is_empty() || tail.starts_with([' ', '\t']) {
                    (&after[..end], tail)
                } else {
                    ("", after)
                }
            };
            match self.defs.get(name) {
                Some(v) if !name.is_empty() => {
                    out.push_str(v);
                    rest = tail;
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn include(&mut self, path: &Path, kind: &str, pattern: &str, at: &Source, depth: usize) {
        let keyword = kind.to_owned();
        if depth >= MAX_INCLUDE_DEPTH {
            self.note(
                at,
                &keyword,
                Severity::Error,
                format!("includes nested deeper than {MAX_INCLUDE_DEPTH}; is there a loop?"),
            );
            return;
        }
        let words = split_words(pattern);
        let Some(pattern) = words.first() else {
            self.note(at, &keyword, Severity::Error, "include without a file name");
            return;
        };
        // keepalived changes into the including file's directory first.
        let base = path.parent().unwrap_or(Path::new("."));
        let full: PathBuf = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            base.join(pattern)
        };
        let matches: Vec<PathBuf> = match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => paths
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect(),
            Err(e) => {
                self.note(
                    at,
                    &keyword,
                    Severity::Error,
                    format!("`{pattern}` is not a valid file pattern: {e}"),
                );
                return;
            }
        };
        if matches.is_empty() {
            // Only the match-checking variants (m, w, b, a) require a match.
            let (severity, what) = if matches!(kind, "include" | "includer") {
                (
                    Severity::Harmless,
                    "matches no file (keepalived accepts this too)",
                )
            } else {
                (
                    Severity::Error,
                    "matches no file (keepalived reports this as a config error)",
                )
            };
            self.note(
                at,
                &keyword,
                severity,
                format!("`{}` {what}", full.display()),
            );
            return;
        }
        for m in matches {
            self.files_read += 1;
            if self.files_read > MAX_FILES {
                self.note(
                    at,
                    &keyword,
                    Severity::Error,
                    format!("more than {MAX_FILES} files included; is there a loop?"),
                );
                return;
            }
            match std::fs::read_to_string(&m) {
                Ok(text) => self.file(&m, &text, depth + 1),
                Err(e) => self.note(
                    at,
                    &keyword,
                    Severity::Error,
                    format!("cannot read `{}`: {e}", m.display()),
                ),
            }
        }
    }

    /// Splits a line at `{` / `}` outside double quotes, as keepalived does.
    fn split_braces(&mut self, line: &str, at: &Source) {
        let mut rest = line.trim();
        while !rest.is_empty() {
            let mut quoted = false;
            let mut cut = None;
            for (i, c) in rest.char_indices() {
                match c {
                    '"' => quoted = !quoted,
                    '{' | '}' if !quoted => {
                        cut = Some((i, c));
                        break;
                    }
                    _ => {}
                }
            }
            let Some((i, brace)) = cut else {
                self.words(rest, at);
                return;
            };
            self.words(&rest[..i], at);
            self.lines.push(if brace == '{' {
                Line::Open(at.clone())
            } else {
                Line::Close(at.clone())
            });
            rest = rest[i + 1..].trim();
        }
    }

    fn words(&mut self, s: &str, at: &Source) {
        let words = split_words(s);
        if !words.is_empty() {
            self.lines.push(Line::Words(words, at.clone()));
        }
    }
}

/// `include PATTERN` and its checked variants: (keyword, rest of line).
fn include(line: &str) -> Option<(&str, &str)> {
    let (kw, rest) = line.split_once([' ', '\t'])?;
    matches!(
        kw,
        "include" | "includer" | "includem" | "includew" | "includeb" | "includea"
    )
    .then_some((kw, rest.trim()))
}

/// `$NAME=VALUE`: the name (letters, digits, `_`, not starting with a digit).
fn definition(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.strip_prefix('$')?.split_once('=')?;
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some((name, value.trim()))
}

/// Removes a comment (`#` or `!` outside double quotes; `\#`, `\!` escape).
pub fn decomment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut quoted = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                out.push(c);
            }
            '\\' => match chars.peek() {
                Some('#' | '!') if !quoted => {
                    out.push('\\');
                    out.extend(chars.next());
                }
                Some(_) => {
                    out.push(c);
                    out.extend(chars.next());
                }
                None => out.push(c),
            },
            '#' | '!' if !quoted => break,
            _ => out.push(c),
        }
    }
    out.trim_end_matches(['\r', ' ', '\t']).to_owned()
}

/// Splits into words: blanks separate, `"…"`/`'…'` group and are removed,
/// `\C` is C (keepalived's `alloc_strvec_quoted_escaped`, common escapes).
pub fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', _) => {
                in_word = true;
                match chars.next() {
                    Some('t') => cur.push('\t'),
                    Some('n') => cur.push('\n'),
                    Some(n) => cur.push(n),
                    None => {}
                }
            }
            ('"' | '\'', None) => {
                quote = Some(c);
                in_word = true;
            }
            (c, Some(q)) if c == q => quote = None,
            (c, None) if c == ' ' || c == '\t' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (c, _) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// keepalived's default config id: the node name up to the first dot.
fn default_config_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .and_then(|h| h.trim().split('.').next().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
