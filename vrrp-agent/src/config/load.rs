//! Reading and validating a config file, and its problems with their
//! positions.

use std::{ops::Range, path::Path};

use super::{Config, validate};

/// One problem found in a config file, with its 1-based position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

/// Why a config file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read config: {source}")]
    Read {
        /// The path as given.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is invalid; every problem is listed.
    #[error("{}", problems.iter().map(|p| p.render(file)).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The path as given.
        file: String,
        /// Every problem, in file order.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems as `FILE:LINE:COL: message` lines (one line for a read error).
    pub fn lines(&self) -> Vec<String> {
        match self {
            ConfigError::Read { .. } => vec![self.to_string()],
            ConfigError::Invalid { file, problems } => {
                problems.iter().map(|p| p.render(file)).collect()
            }
        }
    }
}

impl Problem {
    fn render(&self, file: &str) -> String {
        format!("{file}:{}:{}: {}", self.line, self.col, self.message)
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_warnings(path).map(|(c, _)| c)
    }

    /// Like [`Config::load`], also returning warnings (valid but dubious
    /// settings) as `FILE:LINE:COL: warning: message` lines.
    pub fn load_with_warnings(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let file = path.display().to_string();
        let read_error = |source| ConfigError::Read {
            file: file.clone(),
            source,
        };
        let bytes = std::fs::read(path).map_err(read_error)?;
        match std::str::from_utf8(&bytes) {
            Ok(text) => Config::parse_preflight(text, &file),
            Err(e) => Err(ConfigError::Invalid {
                problems: vec![not_utf8(&bytes, e.valid_up_to())],
                file,
            }),
        }
    }

    /// Validates config text; `file` is only used in messages.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        Config::parse_with_warnings(text, file).map(|(c, _)| c)
    }

    /// Like [`Config::parse`], also returning warnings.
    pub fn parse_with_warnings(
        text: &str,
        file: &str,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        Config::parse_inner(text, file, false)
    }

    /// Like [`Config::parse_with_warnings`], also looking at the system:
    /// every script and `exec` command exists and may be executed (an
    /// error at its key), and a script writable by another user is a
    /// warning. [`Config::load`] does this.
    pub fn parse_preflight(text: &str, file: &str) -> Result<(Config, Vec<String>), ConfigError> {
        Config::parse_inner(text, file, true)
    }

    fn parse_inner(
        text: &str,
        file: &str,
        preflight: bool,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let mut p = validate::Parser::new(text, preflight);
        let cfg = p.document();
        if p.problems.is_empty()
            && let Some(cfg) = cfg
        {
            let warnings = positioned(text, p.warnings)
                .into_iter()
                .map(|w| format!("{file}:{}:{}: warning: {}", w.line, w.col, w.message))
                .collect();
            return Ok((cfg, warnings));
        }
        Err(ConfigError::Invalid {
            file: file.to_owned(),
            problems: positioned(text, p.problems),
        })
    }
}

/// Sorted, de-duplicated problems with line and column.
fn positioned(text: &str, mut spans: Vec<(Range<usize>, String)>) -> Vec<Problem> {
    spans.sort_by_key(|(s, _)| s.start);
    spans.dedup();
    spans
        .into_iter()
        .map(|(span, message)| {
            let (line, col) = line_col(text, span.start);
            Problem { line, col, message }
        })
        .collect()
}

/// The problem of a file that is not UTF-8, at its first invalid byte.
fn not_utf8(bytes: &[u8], valid_up_to: usize) -> Problem {
    let valid = std::str::from_utf8(&bytes[..valid_up_to]).unwrap_or_default();
    let (line, col) = line_col(valid, valid.len());
    let byte = bytes.get(valid_up_to).copied().unwrap_or_default();
    Problem {
        line,
        col,
        message: format!(
            "the config is not valid UTF-8 (byte 0x{byte:02x}); save it as UTF-8 \
             (e.g. `iconv -f latin1 -t utf-8`)"
        ),
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}
