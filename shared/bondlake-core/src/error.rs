//! Errors of the engine. A [`FileError`] means the file as a whole cannot be used: it ends in a
//! manifest with status `failed`. An [`Error`] is anything else (storage, I/O of outputs).

use std::io;

/// Why a whole input file is unusable. Each message names the cause; the caller adds the object.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The gzip stream is truncated or corrupt.
    #[error("truncated or corrupt gzip stream: {0}")]
    Gzip(String),
    /// The zip archive is truncated or corrupt.
    #[error("truncated or corrupt zip archive: {0}")]
    Zip(String),
    /// Decompressing went past the configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// Reading the object failed.
    #[error("read failed: {0}")]
    Read(String),
    /// A compression or encoding that is not supported.
    #[error("unsupported input: {0}")]
    Unsupported(String),
    /// The file has no header line.
    #[error("empty file: no header line")]
    Empty,
    /// The header cannot be decoded in the profile's encoding.
    #[error("header is not valid {encoding} (column {position}: {value})")]
    HeaderEncoding {
        /// The profile's encoding.
        encoding: &'static str,
        /// 1-based position in the header.
        position: usize,
        /// The bytes, escaped.
        value: String,
    },
    /// A required column is neither in the header nor given by the key or profile.
    #[error("required column `{column}` is missing (the header has {header})")]
    MissingColumn {
        /// The contract column.
        column: String,
        /// The header, described (see [`describe_header`]).
        header: String,
    },
    /// Two header fields map to the same column.
    #[error("header names column `{column}` twice (`{first}` and `{second}`)")]
    DuplicateColumn {
        /// The contract column.
        column: String,
        /// The first header naming it.
        first: String,
        /// The second header naming it.
        second: String,
    },
    /// A value the key or file name gives does not fit its column.
    #[error("the object key gives {column} = `{value}`, which is not valid ({reason})")]
    BadKeyValue {
        /// The contract column.
        column: String,
        /// The value from the key.
        value: String,
        /// The reason code.
        reason: crate::reason::Reason,
    },
    /// The header fits none of the vendor profiles its route names.
    #[error("the header fits no profile tried ({tried}); it has {header}")]
    NoProfile {
        /// Each profile tried and why it does not fit.
        tried: String,
        /// The header, described (see [`describe_header`]).
        header: String,
    },
    /// A wide file without a date column.
    #[error("no date column (looked for {looked_for})")]
    NoDateColumn {
        /// The names tried.
        looked_for: String,
    },
    /// A record longer than the configured maximum.
    #[error("record {record} is longer than the limit of {limit} bytes")]
    RecordTooLong {
        /// 1-based record number.
        record: u64,
        /// The limit.
        limit: usize,
    },
    /// A wide file past its contract's `max_series` or `max_cells`.
    #[error("{0}")]
    TooWide(String),
    /// The processing deadline passed (set by the caller).
    #[error("stopped: {0}")]
    Stopped(String),
}

/// `text` for a message: control characters and quotes escaped, cut to `max` characters with an
/// ellipsis, so input text can never flood or garble a log line, a manifest or a Slack post.
pub(crate) fn clip(text: &str, max: usize) -> String {
    let escaped: String = text.chars().flat_map(char::escape_debug).collect();
    match escaped.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &escaped[..cut]),
        None => escaped,
    }
}

/// Names a header for an error message by its column count and first names, each escaped and cut
/// short, so a header that is really a data row (or megabytes of NULs) never floods a message.
pub(crate) fn describe_header(names: &[String]) -> String {
    const SHOWN: usize = 8;
    const NAME_CHARS: usize = 32;
    let shown: Vec<String> = names
        .iter()
        .take(SHOWN)
        .map(|n| clip(n, NAME_CHARS))
        .collect();
    let more = if names.len() > SHOWN { ", …" } else { "" };
    format!(
        "{} column{}: {}{more}",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        shown.join(", ")
    )
}

impl FileError {
    /// Classifies an I/O error from the decoding stack.
    pub fn read(e: io::Error) -> FileError {
        if let Some(limit) = e
            .get_ref()
            .and_then(|i| i.downcast_ref::<DecompressLimit>())
        {
            return FileError::TooLarge(limit.to_string());
        }
        if let Some(zip) = e.get_ref().and_then(|i| i.downcast_ref::<ZipCorrupt>()) {
            return FileError::Zip(zip.to_string());
        }
        match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::InvalidData => FileError::Gzip(e.to_string()),
            _ => FileError::Read(e.to_string()),
        }
    }
}

/// An error that is not about the file's content: storage, output I/O, configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing or reading an object failed.
    #[error("storage: {0}")]
    Storage(#[from] io::Error),
    /// Parquet encoding failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow failed to build a batch.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A contract or profile problem.
    #[error(transparent)]
    Contract(#[from] crate::contract::ContractError),
    /// Reading the input object failed part-way (a network or storage fault, not its content):
    /// a retry may succeed, so no manifest is written.
    #[error("reading the input failed: {0}")]
    Source(String),
    /// `Options::deadline` passed before the end of the file: outputs were removed and no
    /// manifest was written, so the file can be handed to a bigger engine or retried.
    #[error("stopped at the deadline before the end of the file")]
    DeadlineExceeded,
    /// Bad configuration or arguments.
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// Whether running the same input again may succeed (storage and source faults). Contract
    /// and configuration errors are not retried: they need a person.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Storage(e) => crate::store::StorageKind::of(e).is_retryable(),
            Error::Source(_) => true,
            _ => false,
        }
    }
}

// The input layer's marker errors, carried inside `io::Error` through the readers and told
// apart here.

/// Marker error: the zip entry's data is truncated or corrupt (a CRC or deflate error).
#[derive(Debug)]
pub(crate) struct ZipCorrupt(pub String);

impl std::fmt::Display for ZipCorrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ZipCorrupt {}

/// Marker error: the decompressed size passed a limit; the message says which.
#[derive(Debug)]
pub(crate) struct DecompressLimit(pub String);

impl std::fmt::Display for DecompressLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecompressLimit {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_is_described_by_its_count_and_first_names_cut_short() {
        let names: Vec<String> = ["TradDt", "BizDt", "Sgmt"].map(String::from).to_vec();
        assert_eq!(describe_header(&names), "3 columns: TradDt, BizDt, Sgmt");
        let mut many: Vec<String> = (1..=20).map(|i| format!("c{i}")).collect();
        many[0] = "\0".repeat(100);
        let d = describe_header(&many);
        assert!(d.starts_with("20 columns: \\0\\0"), "{d}");
        assert!(d.ends_with("c8, …"), "{d}");
        assert!(d.len() < 150, "{d}");
    }
}
