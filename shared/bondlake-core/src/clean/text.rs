//! Bytes in the profile's encoding: decoding the header and fields, escaping what cannot be shown.

use super::*;

/// Decodes a header field in the profile's encoding.
pub(crate) fn decode_header(encoding: Encoding, raw: &[Vec<u8>]) -> Result<Vec<String>, FileError> {
    raw.iter()
        .enumerate()
        .map(|(k, b)| {
            decode_text(encoding, b).ok_or_else(|| FileError::HeaderEncoding {
                encoding: encoding_name(encoding),
                position: k + 1,
                value: escape_bytes(b),
            })
        })
        .collect()
}

/// The name of an encoding as written in errors.
pub(crate) fn encoding_name(e: Encoding) -> &'static str {
    match e {
        Encoding::Utf8 => "UTF-8",
        Encoding::ShiftJis => "Shift_JIS (CP932)",
    }
}

/// Decodes bytes strictly; `None` when any byte is invalid in the encoding.
pub(crate) fn decode_text(encoding: Encoding, b: &[u8]) -> Option<String> {
    match encoding {
        Encoding::Utf8 => std::str::from_utf8(b).ok().map(str::to_string),
        Encoding::ShiftJis => encoding_rs::SHIFT_JIS
            .decode_without_bom_handling_and_without_replacement(b)
            .map(|c| c.into_owned()),
    }
}

/// Decodes bytes for display, writing any invalid byte as `\xNN` so nothing is lost.
pub(crate) fn escape_bytes_in(encoding: Encoding, b: &[u8]) -> String {
    if let Some(s) = decode_text(encoding, b) {
        return s;
    }
    match encoding {
        Encoding::Utf8 => escape_bytes(b),
        Encoding::ShiftJis => {
            // Decode what decodes; escape the bytes of each malformed sequence.
            let mut out = String::new();
            let mut decoder = encoding_rs::SHIFT_JIS.new_decoder_without_bom_handling();
            let mut rest = b;
            let mut buf = String::with_capacity(b.len() * 3 + 16);
            loop {
                buf.clear();
                let (res, read) =
                    decoder.decode_to_string_without_replacement(rest, &mut buf, true);
                out.push_str(&buf);
                match res {
                    encoding_rs::DecoderResult::InputEmpty => break,
                    encoding_rs::DecoderResult::OutputFull => {
                        buf.reserve(rest.len() * 3 + 16);
                    }
                    encoding_rs::DecoderResult::Malformed(bad, _) => {
                        let start = read - bad as usize;
                        // The malformed bytes end at `read`; earlier ones were decoded.
                        for &x in &rest[start.min(read)..read] {
                            out.push_str(&format!("\\x{x:02X}"));
                        }
                    }
                }
                rest = &rest[read..];
                if rest.is_empty() {
                    break;
                }
            }
            out
        }
    }
}

/// UTF-8 with invalid bytes written as `\xNN`.
pub(crate) fn escape_bytes(b: &[u8]) -> String {
    let mut out = String::new();
    for chunk in b.utf8_chunks() {
        out.push_str(chunk.valid());
        for x in chunk.invalid() {
            out.push_str(&format!("\\x{x:02X}"));
        }
    }
    out
}
