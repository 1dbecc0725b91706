//! What a query returned, as `bondlake sql` shows it: column names, what kind of value each
//! column holds (so a JSON reader gets numbers as numbers), and every cell as exact text.

/// How a column's cells are written where the format distinguishes kinds (JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    /// Integers, decimals and floats: written as they are, never through a float.
    Number,
    /// `true` or `false`.
    Boolean,
    /// Everything else (text, dates, instants, intervals, blobs).
    Text,
}

/// One result column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultColumn {
    /// Its name.
    pub name: String,
    /// What its cells hold.
    pub kind: CellKind,
}

/// A query's result: columns, and rows of cells as text (`None` is SQL NULL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultSet {
    /// The columns, in order.
    pub columns: Vec<ResultColumn>,
    /// The rows.
    pub rows: Vec<Vec<Option<String>>>,
}
