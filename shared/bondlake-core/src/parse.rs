//! Field-level parsing: trimming, null tokens, exact decimals, integers, dates and check digits.
//!
//! Every function here works on the raw bytes of one field and returns either a typed value or the
//! [`Reason`] the record is rejected for. Nothing allocates on the clean path.

use crate::reason::Reason;

/// Per byte: 1 when trimming can start at it from the front (space, tab, the first byte of
/// a no-break space), 2 when from the back (space, tab, its last byte).
const TRIM_BYTE: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b' ' as usize] = 3;
    t[b'\t' as usize] = 3;
    t[0xC2] = 1;
    t[0xA0] = 2;
    t
};

/// Trims spaces, tabs and no-break spaces (U+00A0, `C2 A0` in UTF-8) from both ends (docs/datasets.md, decision 2).
#[inline]
pub fn trim(mut s: &[u8]) -> &[u8] {
    // Most fields have nothing to trim: one table lookup per end rules it out.
    if let (Some(&a), Some(&z)) = (s.first(), s.last())
        && TRIM_BYTE[usize::from(a)] & 1 == 0
        && TRIM_BYTE[usize::from(z)] & 2 == 0
    {
        return s;
    }
    loop {
        match s {
            [b' ' | b'\t', rest @ ..] => s = rest,
            [0xC2, 0xA0, rest @ ..] => s = rest,
            [rest @ .., b' ' | b'\t'] => s = rest,
            [rest @ .., 0xC2, 0xA0] => s = rest,
            _ => return s,
        }
    }
}

/// A field written as ` "value" ` (spaces around a quoted field) arrives from the CSV layer with its
/// quotes, because a quote only opens a quoted field at the field's first byte. This unwraps it.
pub fn unquote_padded(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() >= 2 && s[0] == b'"' && s[s.len() - 1] == b'"' {
        let inner = &s[1..s.len() - 1];
        let mut out = Vec::with_capacity(inner.len());
        let mut i = 0;
        while i < inner.len() {
            out.push(inner[i]);
            if inner[i] == b'"' && inner.get(i + 1) == Some(&b'"') {
                i += 1;
            }
            i += 1;
        }
        Some(out)
    } else {
        None
    }
}

/// Null tokens, compared case-insensitively after trimming (docs/datasets.md, decision 1). Kept lower-cased, with
/// the set of their first bytes so most values are ruled out by one lookup.
#[derive(Debug, Clone)]
pub struct NullTokens {
    tokens: Vec<Vec<u8>>,
    first: [bool; 256],
    longest: usize,
}

impl NullTokens {
    /// Builds the set from the contract's tokens; the empty string is always null.
    pub fn new<S: AsRef<str>>(tokens: &[S]) -> Self {
        let mut v: Vec<Vec<u8>> = tokens
            .iter()
            .map(|t| t.as_ref().trim().to_ascii_lowercase().into_bytes())
            .collect();
        if !v.iter().any(|t| t.is_empty()) {
            v.push(Vec::new());
        }
        let mut first = [false; 256];
        for t in &v {
            if let Some(&b) = t.first() {
                first[usize::from(b)] = true;
                first[usize::from(b.to_ascii_uppercase())] = true;
            }
        }
        let longest = v.iter().map(Vec::len).max().unwrap_or(0);
        NullTokens {
            tokens: v,
            first,
            longest,
        }
    }

    /// True when the (already trimmed) field is one of the null tokens.
    #[inline]
    pub fn is_null(&self, s: &[u8]) -> bool {
        match s.first() {
            None => true,
            Some(&b) if s.len() <= self.longest && self.first[usize::from(b)] => {
                self.tokens.iter().any(|t| t.eq_ignore_ascii_case(s))
            }
            Some(_) => false,
        }
    }
}

/// Parses an exact decimal into an integer scaled by `10^scale` (docs/datasets.md, decisions 4 and 5).
///
/// Accepts grouping commas in the integer part, a leading `+` or `-`, `(123.45)` as negative, `.5`
/// and `5.`; rejects exponents, `NaN` and a comma after the point (`invalid_number`); a non-zero digit
/// past the scale or too many integer digits is `precision`.
#[inline]
pub fn parse_decimal(s: &[u8], precision: u8, scale: u8) -> Result<i128, Reason> {
    // The plain shape inlined into the caller; everything else out of line.
    if precision <= 18
        && let Some(v) = parse_plain(s, precision, scale)
    {
        return Ok(v);
    }
    parse_decimal_in_full(s, precision, scale)
}

#[inline(never)]
fn parse_decimal_in_full(s: &[u8], precision: u8, scale: u8) -> Result<i128, Reason> {
    // At most `precision` significant digits are ever accumulated (leading zeros add nothing),
    // so up to 18 they fit a u64, whose multiply is one instruction where i128's is three.
    if precision <= 18 {
        parse_scaled::<u64>(s, precision, scale)
    } else {
        parse_scaled::<i128>(s, precision, scale)
    }
}

/// The shape nearly every vendor value has, `-?[0-9]*(\.[0-9]*)?` within the column's digits, in
/// one multiply-add per digit and no per-digit bookkeeping. `None` for anything else (a `+`,
/// commas, parentheses, zeros past the scale, every error): [`parse_scaled`] alone decides those.
/// Precision at most 18, so every value it builds fits a u64.
#[inline(always)]
fn parse_plain(s: &[u8], precision: u8, scale: u8) -> Option<i128> {
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    // 19 digits at most before any check: below 2^64.
    if digits.len() > 19 {
        return None;
    }
    let mut value = 0u64;
    let mut i = 0;
    while let Some(&b) = digits.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        value = value * 10 + u64::from(d);
        i += 1;
    }
    // Significant integer digits within precision - scale, leading zeros not counted.
    if value >= POW10[usize::from(precision - scale)] as u64 {
        return None;
    }
    let mut frac_len = 0;
    if let Some(&b) = digits.get(i) {
        let frac = &digits[i + 1..];
        if b != b'.' || frac.len() > usize::from(scale) || (i == 0 && frac.is_empty()) {
            return None;
        }
        for &b in frac {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            value = value * 10 + u64::from(d);
        }
        frac_len = frac.len();
    } else if i == 0 {
        return None;
    }
    // 10^scale ≤ 10^18: the table's low word is the power.
    let value = i128::from(value * POW10[usize::from(scale) - frac_len] as u64);
    Some(if negative { -value } else { value })
}

/// [`parse_decimal`] through the 128-bit accumulator whatever the precision: the fast path's
/// reference, kept for the tests and `bondlake bench --kernels` until it is retired.
pub fn parse_decimal_wide(s: &[u8], precision: u8, scale: u8) -> Result<i128, Reason> {
    parse_scaled::<i128>(s, precision, scale)
}

/// The accumulator [`parse_decimal`] builds a value in.
trait Accumulator: Copy {
    const ZERO: Self;
    /// `self * 10 + digit`.
    fn push(self, digit: u8) -> Self;
    fn into_i128(self) -> i128;
}

impl Accumulator for u64 {
    const ZERO: Self = 0;
    #[inline(always)]
    fn push(self, digit: u8) -> Self {
        self * 10 + u64::from(digit)
    }
    #[inline(always)]
    fn into_i128(self) -> i128 {
        i128::from(self)
    }
}

impl Accumulator for i128 {
    const ZERO: Self = 0;
    #[inline(always)]
    fn push(self, digit: u8) -> Self {
        self * 10 + i128::from(digit)
    }
    #[inline(always)]
    fn into_i128(self) -> i128 {
        self
    }
}

#[inline]
fn parse_scaled<T: Accumulator>(s: &[u8], precision: u8, scale: u8) -> Result<i128, Reason> {
    let (negative, digits) = split_sign(s)?;
    let mut value = T::ZERO;
    let mut int_digits = 0u32; // significant digits before the point
    let mut frac_digits = 0u32; // digits kept after the point
    let mut any_digit = false;
    let mut i = 0;
    let mut prev_digit = false;
    while i < digits.len() {
        match digits[i] {
            d @ b'0'..=b'9' => {
                any_digit = true;
                prev_digit = true;
                if int_digits > 0 || d != b'0' {
                    int_digits += 1;
                    if int_digits > u32::from(precision - scale) {
                        return Err(precision_or_number(&digits[i..]));
                    }
                }
                value = value.push(d - b'0');
            }
            b',' => {
                // A grouping comma sits between digits of the integer part, in any grouping.
                if !prev_digit || !digits.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    return Err(Reason::InvalidNumber);
                }
                prev_digit = false;
            }
            b'.' => break,
            _ => return Err(Reason::InvalidNumber),
        }
        i += 1;
    }
    if i < digits.len() {
        // digits[i] is the point
        let frac = &digits[i + 1..];
        let mut precision_lost = false;
        for &d in frac {
            if !d.is_ascii_digit() {
                return Err(Reason::InvalidNumber);
            }
            any_digit = true;
            if frac_digits < u32::from(scale) {
                value = value.push(d - b'0');
                frac_digits += 1;
            } else if d != b'0' {
                precision_lost = true;
            }
        }
        if precision_lost {
            return Err(Reason::Precision);
        }
    }
    if !any_digit {
        return Err(Reason::InvalidNumber);
    }
    let value = value.into_i128() * POW10[(u32::from(scale) - frac_digits) as usize];
    Ok(if negative { -value } else { value })
}

/// 10^e for every scale a decimal can have (precision ≤ 38): a load, where `i128::pow` was a
/// loop of 128-bit multiplies on every value whose fraction is shorter than its scale.
const POW10: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut e = 1;
    while e < 39 {
        t[e] = t[e - 1] * 10;
        e += 1;
    }
    t
};

/// After too many integer digits, the rest decides: garbage is `invalid_number`, digits `precision`.
fn precision_or_number(rest: &[u8]) -> Reason {
    let mut seen_point = false;
    for &b in rest {
        match b {
            b'0'..=b'9' | b',' => {}
            b'.' if !seen_point => seen_point = true,
            _ => return Reason::InvalidNumber,
        }
    }
    Reason::Precision
}

/// Splits `(x)`, `+x` and `-x` into a sign and the digits.
fn split_sign(s: &[u8]) -> Result<(bool, &[u8]), Reason> {
    let (paren, s) = match s {
        [b'(', inner @ .., b')'] => (true, inner),
        _ => (false, s),
    };
    let (minus, rest) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    if paren && (minus || s.first() == Some(&b'+')) {
        return Err(Reason::InvalidNumber);
    }
    Ok((paren || minus, rest))
}

/// Parses a whole number for an int64 column: grouping commas allowed, a point only with zeros
/// after it (`1234.0`); beyond int64 is `invalid_number` (docs/datasets.md, decision 4).
pub fn parse_int64(s: &[u8]) -> Result<i64, Reason> {
    let (negative, digits) = split_sign(s)?;
    let mut value: i128 = 0;
    let mut any_digit = false;
    let mut prev_digit = false;
    let mut i = 0;
    while i < digits.len() {
        match digits[i] {
            d @ b'0'..=b'9' => {
                any_digit = true;
                prev_digit = true;
                value = value * 10 + i128::from(d - b'0');
                if value > i128::from(i64::MAX) + 1 {
                    return Err(Reason::InvalidNumber);
                }
            }
            b',' if prev_digit && digits.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                prev_digit = false;
            }
            b'.' => break,
            _ => return Err(Reason::InvalidNumber),
        }
        i += 1;
    }
    if i < digits.len() && !digits[i + 1..].iter().all(|&d| d == b'0') {
        return Err(Reason::InvalidNumber);
    }
    if !any_digit {
        return Err(Reason::InvalidNumber);
    }
    let value = if negative { -value } else { value };
    i64::try_from(value).map_err(|_| Reason::InvalidNumber)
}

/// Formats a scaled decimal exactly, e.g. `(12345, 2)` as `123.45`.
pub fn format_decimal(value: i128, scale: u8) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    if scale == 0 {
        return format!("{sign}{abs}");
    }
    let div = 10u128.pow(u32::from(scale));
    format!(
        "{sign}{}.{:0width$}",
        abs / div,
        abs % div,
        width = usize::from(scale)
    )
}

/// One element of a date format such as `DD-Mon-YYYY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateToken {
    Year4,
    Year2,
    Month,
    MonthName,
    Day,
    Literal(u8),
}

/// A date format from a contract: `YYYY`, `YY`, `MM`, `DD`, `Mon` and literal separators; or an
/// instant, `EPOCH_S`, `EPOCH_MS`, `EPOCH_US` or `EPOCH_NS` (a whole number of units since
/// 1970-01-01T00:00Z) and a time zone (`EPOCH_NS America/New_York`), read as that instant's date
/// in the zone.
///
/// `MM` and `DD` take one or two digits when a separator follows them (`3/5/2026`), exactly two
/// when they are packed (`YYYYMMDD`). `YY` is 2000 + YY.
#[derive(Debug, Clone)]
pub struct DateFormat {
    text: String,
    tokens: Vec<DateToken>,
    epoch: Option<Epoch>,
    /// `YYYY-MM-DD`: told once here, so the per-value fast path tests a flag, not the text.
    iso: bool,
}

impl PartialEq for DateFormat {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for DateFormat {}

/// An instant's unit and the zone whose calendar gives its date. The zone comes from the tz
/// database bundled into the binary (jiff), so a Lambda needs no zoneinfo files.
#[derive(Debug, Clone)]
struct Epoch {
    nanos_per_unit: i128,
    zone: jiff::tz::TimeZone,
}

impl Epoch {
    fn new(text: &str) -> Result<Option<Epoch>, String> {
        let Some(rest) = text.strip_prefix("EPOCH_") else {
            return Ok(None);
        };
        let (unit, zone) = rest.split_once(' ').unwrap_or((rest, ""));
        let nanos_per_unit = match unit {
            "S" => 1_000_000_000,
            "MS" => 1_000_000,
            "US" => 1_000,
            "NS" => 1,
            _ => {
                return Err(format!(
                    "date format `{text}`: the unit is S, MS, US or NS (EPOCH_NS America/New_York)"
                ));
            }
        };
        let zone = jiff::tz::TimeZone::get(zone.trim()).map_err(|e| {
            format!(
                "date format `{text}`: `{}` is not a time zone: {e}",
                zone.trim()
            )
        })?;
        Ok(Some(Epoch {
            nanos_per_unit,
            zone,
        }))
    }

    fn day(&self, s: &[u8]) -> Option<i32> {
        let (negative, digits) = match s.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, s),
        };
        if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = digits
            .iter()
            .fold(0i128, |n, c| n * 10 + i128::from(c - b'0'));
        let nanos = if negative { -n } else { n }.checked_mul(self.nanos_per_unit)?;
        let at = jiff::Timestamp::from_nanosecond(nanos).ok()?;
        let date = self.zone.to_datetime(at).date();
        days_from_civil(
            i32::from(date.year()),
            date.month() as u32,
            date.day() as u32,
        )
    }
}

impl DateFormat {
    /// Compiles a format string; an unknown letter is an error naming it.
    pub fn new(text: &str) -> Result<Self, String> {
        if let Some(epoch) = Epoch::new(text)? {
            return Ok(DateFormat {
                text: text.to_string(),
                tokens: Vec::new(),
                epoch: Some(epoch),
                iso: false,
            });
        }
        let mut tokens = Vec::new();
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let rest = &text[i..];
            let (tok, len) = if rest.starts_with("YYYY") {
                (DateToken::Year4, 4)
            } else if rest.starts_with("YY") {
                (DateToken::Year2, 2)
            } else if rest.starts_with("MM") {
                (DateToken::Month, 2)
            } else if rest.starts_with("DD") {
                (DateToken::Day, 2)
            } else if rest.starts_with("Mon") {
                (DateToken::MonthName, 3)
            } else if b[i].is_ascii_alphanumeric() {
                return Err(format!(
                    "date format `{text}`: unknown element at `{rest}` (use YYYY, YY, MM, DD, Mon)"
                ));
            } else {
                (DateToken::Literal(b[i]), 1)
            };
            tokens.push(tok);
            i += len;
        }
        let has = |t| tokens.contains(&t);
        if !(has(DateToken::Year4) || has(DateToken::Year2))
            || !(has(DateToken::Month) || has(DateToken::MonthName))
            || !has(DateToken::Day)
        {
            return Err(format!(
                "date format `{text}` needs a year, a month and a day"
            ));
        }
        Ok(DateFormat {
            iso: text == "YYYY-MM-DD",
            text: text.to_string(),
            tokens,
            epoch: None,
        })
    }

    /// The format as written in the contract.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Days since 1970-01-01, or `None` when the text does not match or names no such day.
    pub fn parse(&self, s: &[u8]) -> Option<i32> {
        if let Some(epoch) = &self.epoch {
            return epoch.day(s);
        }
        let (mut y, mut m, mut d) = (0i32, 0u32, 0u32);
        let mut pos = 0;
        for (k, tok) in self.tokens.iter().enumerate() {
            let flexible = matches!(self.tokens.get(k + 1), Some(DateToken::Literal(_)) | None);
            match *tok {
                DateToken::Literal(c) => {
                    if s.get(pos) != Some(&c) {
                        return None;
                    }
                    pos += 1;
                }
                DateToken::Year4 => {
                    y = digits(s, &mut pos, 4, 4)? as i32;
                }
                DateToken::Year2 => {
                    y = 2000 + digits(s, &mut pos, 2, 2)? as i32;
                }
                DateToken::Month => {
                    m = digits(s, &mut pos, if flexible { 1 } else { 2 }, 2)?;
                }
                DateToken::Day => {
                    d = digits(s, &mut pos, if flexible { 1 } else { 2 }, 2)?;
                }
                DateToken::MonthName => {
                    let name = s.get(pos..pos + 3)?;
                    m = month_from_name(name)?;
                    pos += 3;
                }
            }
        }
        if pos != s.len() {
            return None;
        }
        days_from_civil(y, m, d)
    }
}

fn digits(s: &[u8], pos: &mut usize, min: usize, max: usize) -> Option<u32> {
    let mut n = 0u32;
    let mut count = 0;
    while count < max {
        match s.get(*pos) {
            Some(c) if c.is_ascii_digit() => {
                n = n * 10 + u32::from(c - b'0');
                *pos += 1;
                count += 1;
            }
            _ => break,
        }
    }
    (count >= min).then_some(n)
}

const MONTHS: [&[u8; 3]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

fn month_from_name(name: &[u8]) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(name))
        .map(|i| i as u32 + 1)
}

/// Parses a date with the first of `formats` that accepts it (docs/datasets.md, decision 3).
#[inline]
pub fn parse_date(s: &[u8], formats: &[DateFormat]) -> Result<i32, Reason> {
    // Fast path for ISO dates, by far the most common.
    if s.len() == 10 && s[4] == b'-' && s[7] == b'-' && formats.first().is_some_and(|f| f.iso) {
        let num = |a: &[u8]| -> Option<u32> {
            a.iter().try_fold(0u32, |acc, c| {
                c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
            })
        };
        if let (Some(y), Some(m), Some(d)) = (num(&s[0..4]), num(&s[5..7]), num(&s[8..10])) {
            return days_from_civil(y as i32, m, d).ok_or(Reason::InvalidDate);
        }
    }
    formats
        .iter()
        .find_map(|f| f.parse(s))
        .ok_or(Reason::InvalidDate)
}

/// [`parse_date`], then `range` (days since 1970-01-01): a date outside it is `invalid_date`.
#[inline]
pub fn parse_date_within(
    s: &[u8],
    formats: &[DateFormat],
    range: &std::ops::RangeInclusive<i32>,
) -> Result<i32, Reason> {
    parse_date(s, formats).and_then(|d| {
        if range.contains(&d) {
            Ok(d)
        } else {
            Err(Reason::InvalidDate)
        }
    })
}

/// Days since 1970-01-01 for a proleptic Gregorian date, or `None` when there is no such day.
///
/// Kept by hand rather than through jiff (which formats the instants): it runs once per date cell
/// on the hot path, as a few integer operations with no validation layers or error values.
pub fn days_from_civil(y: i32, m: u32, d: u32) -> Option<i32> {
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    // Howard Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe as i32 - 719_468)
}

/// The calendar date of a day number, inverse of [`days_from_civil`].
pub fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD` for a day number.
pub fn format_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Day of the week, 0 = Monday ... 6 = Sunday.
pub fn weekday(days: i32) -> u32 {
    // 1970-01-01 was a Thursday (3).
    ((days % 7 + 7 + 3) % 7) as u32
}

/// The CUSIP check: nine characters, the last the modulus-10 "double-add-double" digit.
pub fn cusip_is_valid(s: &[u8]) -> bool {
    if s.len() != 9 || !s[8].is_ascii_digit() {
        return false;
    }
    let mut sum = 0u32;
    for (i, &c) in s[..8].iter().enumerate() {
        let mut v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            b'*' => 36,
            b'@' => 37,
            b'#' => 38,
            _ => return false,
        };
        if i % 2 == 1 {
            v *= 2;
        }
        sum += v / 10 + v % 10;
    }
    (10 - sum % 10) % 10 == u32::from(s[8] - b'0')
}

/// The Luhn sum's share of one ISIN character read from the right, by whether the next digit of
/// the expansion (letters become two digits, A = 10 ... Z = 35) is doubled: the share in the low
/// five bits, bit 5 set when the character flips which digit is doubled (a digit does; a letter,
/// two digits, does not); `NOT_ISIN` for a character an ISIN cannot hold.
const ISIN_LUHN: [[u8; 256]; 2] = {
    const fn luhn(d: u8, doubled: bool) -> u8 {
        if doubled {
            (2 * d) / 10 + (2 * d) % 10
        } else {
            d
        }
    }
    let mut t = [[NOT_ISIN; 256]; 2];
    let mut doubled = 0;
    while doubled < 2 {
        let mut c = 0;
        while c < 256 {
            let b = c as u8;
            if b.is_ascii_digit() {
                t[doubled][c] = luhn(b - b'0', doubled == 1) | 0x20;
            } else if b.is_ascii_uppercase() {
                let v = b - b'A' + 10;
                // Right to left: the units digit first, then the tens with the other parity.
                t[doubled][c] = luhn(v % 10, doubled == 1) + luhn(v / 10, doubled == 0);
            }
            c += 1;
        }
        doubled += 1;
    }
    t
};
const NOT_ISIN: u8 = 0xFF;

/// The ISIN check (ISO 6166): two letters, nine alphanumerics, a Luhn check digit over the
/// letters expanded to numbers (A = 10 ... Z = 35), in one pass from the right ([`ISIN_LUHN`]).
pub fn isin_is_valid(s: &[u8]) -> bool {
    if s.len() != 12 || !s[..2].iter().all(u8::is_ascii_uppercase) || !s[11].is_ascii_digit() {
        return false;
    }
    let mut sum = 0u32;
    let mut doubled = true;
    for &c in s[..11].iter().rev() {
        let share = ISIN_LUHN[usize::from(doubled)][usize::from(c)];
        if share == NOT_ISIN {
            return false;
        }
        sum += u32::from(share & 0x1F);
        doubled ^= share & 0x20 != 0;
    }
    (10 - sum % 10) % 10 == u32::from(s[11] - b'0')
}

/// Computes the CUSIP check digit of eight characters (used by the generator and tests).
pub fn cusip_check_digit(s8: &[u8]) -> u8 {
    let mut full = [b'0'; 9];
    full[..8].copy_from_slice(&s8[..8]);
    (0..10u8)
        .map(|d| b'0' + d)
        .find(|&d| {
            full[8] = d;
            cusip_is_valid(&full)
        })
        .unwrap_or(b'0')
}

/// Computes the ISIN check digit of eleven characters (used by the generator and tests).
pub fn isin_check_digit(s11: &[u8]) -> u8 {
    let mut full = [b'0'; 12];
    full[..11].copy_from_slice(&s11[..11]);
    (0..10u8)
        .map(|d| b'0' + d)
        .find(|&d| {
            full[11] = d;
            isin_is_valid(&full)
        })
        .unwrap_or(b'0')
}

/// Monday = 0 ... Sunday = 6, for a weekday's English name.
pub fn weekday_number(name: &str) -> Option<u32> {
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .iter()
    .position(|d| d.eq_ignore_ascii_case(name))
    .map(|i| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The ISIN check as ISO 6166 states it (letters expanded, then Luhn): what the one-pass
    /// table must agree with.
    fn isin_is_valid_by_expansion(s: &[u8]) -> bool {
        if s.len() != 12
            || !s[..2].iter().all(u8::is_ascii_uppercase)
            || !s[2..11]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            || !s[11].is_ascii_digit()
        {
            return false;
        }
        let mut expanded = Vec::new();
        for &c in &s[..11] {
            if c.is_ascii_digit() {
                expanded.push(c - b'0');
            } else {
                let v = c - b'A' + 10;
                expanded.extend([v / 10, v % 10]);
            }
        }
        let mut sum = 0u32;
        for (k, &digit) in expanded.iter().rev().enumerate() {
            let v = u32::from(digit) * if k % 2 == 0 { 2 } else { 1 };
            sum += v / 10 + v % 10;
        }
        (10 - sum % 10) % 10 == u32::from(s[11] - b'0')
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(50_000))]
        /// The one-pass ISIN check answers as the expansion does: on ISIN-shaped text (valid
        /// and not) and on any short bytes.
        #[test]
        fn the_isin_table_agrees_with_the_expansion(
            text in prop_oneof![
                "[A-Z]{2}[A-Z0-9]{9}[0-9]",
                "[A-Z0-9a-z*@# ]{10,13}",
                proptest::collection::vec(any::<u8>(), 12..=12)
                    .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            ],
        ) {
            let b = text.as_bytes();
            prop_assert_eq!(isin_is_valid(b), isin_is_valid_by_expansion(b));
            // The same text with its right check digit, so that valid ISINs are common.
            if b.len() == 12 {
                let mut fixed = b.to_vec();
                for d in b'0'..=b'9' {
                    fixed[11] = d;
                    prop_assert_eq!(isin_is_valid(&fixed), isin_is_valid_by_expansion(&fixed));
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        /// The u64 fast path gives what the i128 path gives, value or reason, for every
        /// precision it serves: number-like text (digits, commas, points, signs, parentheses,
        /// long runs of digits near the limits) and any bytes.
        #[test]
        fn the_narrow_accumulator_parses_as_the_wide_one(
            text in prop_oneof![
                "[-+(]?[0-9]{0,20}(,[0-9]{1,3}){0,3}(\\.[0-9]{0,22})?\\)?",
                "[-+(]?0{0,5}[0-9]{0,19}\\.?0{0,4}[0-9]{0,19}",
                "[-+(),.0-9a-z ]{0,24}",
                proptest::collection::vec(any::<u8>(), 0..24)
                    .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            ],
            precision in 1u8..=18,
            scale_share in 0u8..=100,
        ) {
            let scale = (u16::from(precision) * u16::from(scale_share) / 100) as u8;
            let b = text.as_bytes();
            let wide = parse_scaled::<i128>(b, precision, scale);
            prop_assert_eq!(
                parse_scaled::<u64>(b, precision, scale), wide,
                "{:?} as decimal({}, {})", text, precision, scale
            );
            prop_assert_eq!(
                parse_decimal(b, precision, scale), wide,
                "{:?} as decimal({}, {}) through parse_decimal", text, precision, scale
            );
        }
    }

    #[test]
    fn decimals_follow_decision_4() {
        let p = |s: &str| parse_decimal(s.as_bytes(), 18, 2);
        assert_eq!(p("1,234,567.50"), Ok(123_456_750));
        assert_eq!(p("1,23,456.00"), Ok(12_345_600));
        assert_eq!(p("+5"), Ok(500));
        assert_eq!(p("(123.45)"), Ok(-12_345));
        assert_eq!(p("-0.5"), Ok(-50));
        assert_eq!(p(".5"), Ok(50));
        assert_eq!(p("5."), Ok(500));
        assert_eq!(p("5.1000000"), Ok(510));
        assert_eq!(p("5.125"), Err(Reason::Precision));
        assert_eq!(p("1e5"), Err(Reason::InvalidNumber));
        assert_eq!(p("NaN"), Err(Reason::InvalidNumber));
        assert_eq!(p("1.2,3"), Err(Reason::InvalidNumber));
        assert_eq!(p(",123"), Err(Reason::InvalidNumber));
        assert_eq!(p("12,"), Err(Reason::InvalidNumber));
        assert_eq!(p("."), Err(Reason::InvalidNumber));
        assert_eq!(p("(-1)"), Err(Reason::InvalidNumber));
        assert_eq!(p("1234567890123456.00"), Ok(123_456_789_012_345_600));
        assert_eq!(p("12345678901234567"), Err(Reason::Precision));
        assert_eq!(p("12345678901234567x"), Err(Reason::InvalidNumber));
        assert_eq!(p("0000000000000000000001.5"), Ok(150));
        // Short fractions are scaled up to the widest scales a contract allows.
        assert_eq!(parse_decimal(b"0.1", 38, 38), Ok(10i128.pow(37)));
        assert_eq!(parse_decimal(b"-1", 38, 20), Ok(-(10i128.pow(20))));
        assert_eq!(parse_decimal(b"7", 1, 0), Ok(7));
    }

    #[test]
    fn integers_follow_decision_4() {
        assert_eq!(parse_int64(b"1,234"), Ok(1234));
        assert_eq!(parse_int64(b"1234.0"), Ok(1234));
        assert_eq!(parse_int64(b"1234.5"), Err(Reason::InvalidNumber));
        assert_eq!(parse_int64(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(
            parse_int64(b"9223372036854775808"),
            Err(Reason::InvalidNumber)
        );
        assert_eq!(parse_int64(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(
            parse_int64(b"99999999999999999999999"),
            Err(Reason::InvalidNumber)
        );
    }

    #[test]
    fn dates_in_every_accepted_format() {
        let formats: Vec<DateFormat> = [
            "YYYY-MM-DD",
            "YYYYMMDD",
            "MM/DD/YYYY",
            "DD-MM-YYYY",
            "YYYY/MM/DD",
            "DD-Mon-YYYY",
        ]
        .iter()
        .map(|f| DateFormat::new(f).expect("format"))
        .collect();
        let want = days_from_civil(2026, 3, 5);
        for s in [
            "2026-03-05",
            "20260305",
            "03/05/2026",
            "3/5/2026",
            "05-03-2026",
            "2026/03/05",
            "05-Mar-2026",
            "05-MAR-2026",
            "5-mar-2026",
        ] {
            assert_eq!(parse_date(s.as_bytes(), &formats).ok(), want, "{s}");
        }
        for s in [
            "2026-02-30",
            "2026-13-01",
            "20260230",
            "2026-3-5x",
            "05-Foo-2026",
            "",
            "2026",
        ] {
            assert_eq!(
                parse_date(s.as_bytes(), &formats),
                Err(Reason::InvalidDate),
                "{s}"
            );
        }
        assert_eq!(
            parse_date(b"2024-02-29", &formats).ok(),
            days_from_civil(2024, 2, 29)
        );
        assert_eq!(
            format_date(days_from_civil(2026, 11, 25).expect("day")),
            "2026-11-25"
        );
        let bse = DateFormat::new("DDMMYY").expect("format");
        assert_eq!(bse.parse(b"251126"), days_from_civil(2026, 11, 25));
        let bse17 = DateFormat::new("DD-Mon-YY").expect("format");
        assert_eq!(bse17.parse(b"25-Nov-26"), days_from_civil(2026, 11, 25));
    }

    #[test]
    fn an_instant_is_read_as_its_date_in_the_zone_daylight_saving_included() {
        let ny = DateFormat::new("EPOCH_NS America/New_York").expect("format");
        // 2026-11-25 00:00 in New York (EST, UTC-5) is 05:00 UTC.
        assert_eq!(
            ny.parse(b"1795582800000000000"),
            days_from_civil(2026, 11, 25)
        );
        // One nanosecond before is still the 24th in New York, though the 25th in UTC.
        assert_eq!(
            ny.parse(b"1795582799999999999"),
            days_from_civil(2026, 11, 24)
        );
        // Summer (EDT, UTC-4): 2026-07-01 00:00 New York is 04:00 UTC.
        assert_eq!(
            ny.parse(b"1782878400000000000"),
            days_from_civil(2026, 7, 1)
        );
        let utc = DateFormat::new("EPOCH_S UTC").expect("format");
        assert_eq!(utc.parse(b"0"), days_from_civil(1970, 1, 1));
        assert_eq!(utc.parse(b"-1"), days_from_civil(1969, 12, 31));
        for bad in [&b""[..], b"12x", b"1.5", b"-", b"123456789012345678901"] {
            assert_eq!(ny.parse(bad), None, "{bad:?}");
        }
        assert!(DateFormat::new("EPOCH_NS Mars/Olympus").is_err());
        assert!(DateFormat::new("EPOCH_PS UTC").is_err());
    }

    #[test]
    fn check_digits() {
        assert!(cusip_is_valid(b"037833100")); // Apple
        assert!(cusip_is_valid(b"594918104")); // Microsoft
        assert!(!cusip_is_valid(b"037833101"));
        assert!(!cusip_is_valid(b"03783310"));
        assert!(isin_is_valid(b"US0378331005"));
        assert!(isin_is_valid(b"GB0002634946"));
        assert!(!isin_is_valid(b"US0378331006"));
        assert_eq!(cusip_check_digit(b"03783310"), b'0');
        assert_eq!(isin_check_digit(b"US037833100"), b'5');
    }

    #[test]
    fn trimming_and_nulls() {
        assert_eq!(trim(b" \t\xC2\xA0abc \xC2\xA0"), b"abc");
        let nulls = NullTokens::new(&["NULL", "N/A", "NA", "#N/A", "-"]);
        for s in ["", "null", "N/a", "na", "#n/a", "-"] {
            assert!(nulls.is_null(s.as_bytes()), "{s}");
        }
        assert!(!nulls.is_null(b"NaN"));
        assert_eq!(unquote_padded(br#""a ""b"""#), Some(br#"a "b""#.to_vec()));
    }
}
