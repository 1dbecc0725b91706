//! The values a row holds while it is checked and built: what the cleaner produces and the
//! Arrow builders consume (its own module, so that neither depends on the other's internals).

/// A typed value of one cell while its record is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Val<'a> {
    /// Null.
    Null,
    /// Text borrowed from the record.
    Str(&'a str),
    /// Text decoded or unquoted into the row's scratch buffer: start and end.
    Scratch(u32, u32),
    /// Index into an enum's canonical values.
    Enum(u16),
    /// Days since the epoch.
    Date(i32),
    /// A decimal (scaled) or an integer.
    Num(i128),
}

/// A derived value for one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DerivedVal<'a> {
    /// Int32.
    Int(Option<i32>),
    /// A bucket's label: its place in [`crate::contract::DerivedKind::bucket_labels`] (the
    /// output's dictionary key), and its text.
    Label(Option<(u16, &'a str)>),
}
