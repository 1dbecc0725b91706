//! The BI views the dashboards read, one SQL text for all three dialects (README, "Warehouse"
//! documents their columns). Averages weighted by market value are analytics, not money, so they
//! are rounded decimals; the money columns are exact sums.

use super::sql::{Ident, LEDGER};

/// A view: its name, what one row is, and its query.
pub struct View {
    /// The view's name.
    pub name: &'static str,
    /// One line on what a row is.
    pub grain: &'static str,
    /// The SELECT that defines it; `{s}` stands for the schema, `{ledger}` for the ledger table.
    body: &'static str,
}

impl View {
    /// The tables the view reads (`{s}."<table>"` in its query), the ledger aside: it is created
    /// only in a warehouse that loads every one of them.
    pub fn reads(&self) -> Vec<&'static str> {
        let mut tables: Vec<&'static str> = self
            .body
            .split("{s}.\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|table| *table != "{ledger}")
            .collect();
        tables.sort_unstable();
        tables.dedup();
        tables
    }

    /// `CREATE OR REPLACE VIEW` for this view in `schema`.
    pub fn create_sql(&self, schema: &Ident) -> String {
        format!(
            "CREATE OR REPLACE VIEW {schema}.\"{}\" AS\n{}",
            self.name,
            self.body
                .replace("{s}", &schema.to_string())
                .replace("{ledger}", LEDGER)
        )
    }
}

/// Every view, in the order they are created. Every identifier is quoted: Redshift reserves
/// words such as OPEN, and a bare one fails the view at start-up.
pub const VIEWS: [View; 4] = [
    View {
        name: "v_portfolio_exposure",
        grain: "one row per as_of_date, investor_type, bond_type and credit_grade",
        body: r#"SELECT "as_of_date", "investor_type", "bond_type", "credit_grade",
       COUNT(*) AS "positions",
       SUM("market_value") AS "market_value",
       SUM("par_value") AS "par_value",
       CAST(SUM("market_value" * "modified_duration") / NULLIF(SUM(CASE WHEN "modified_duration" IS NOT NULL THEN "market_value" END), 0) AS DECIMAL(12,4)) AS "wavg_duration",
       CAST(SUM("market_value" * "yield_to_maturity") / NULLIF(SUM(CASE WHEN "yield_to_maturity" IS NOT NULL THEN "market_value" END), 0) AS DECIMAL(12,6)) AS "wavg_yield"
FROM {s}."investor_holdings"
GROUP BY "as_of_date", "investor_type", "bond_type", "credit_grade""#,
    },
    View {
        name: "v_top_issuers",
        grain: "one row per as_of_date and issuer, ranked by market value (filter on exposure_rank)",
        body: r#"SELECT "as_of_date", "issuer",
       COUNT(*) AS "positions",
       SUM("market_value") AS "market_value",
       SUM("par_value") AS "par_value",
       RANK() OVER (PARTITION BY "as_of_date" ORDER BY SUM("market_value") DESC) AS "exposure_rank"
FROM {s}."investor_holdings"
GROUP BY "as_of_date", "issuer""#,
    },
    View {
        name: "v_market_summary",
        grain: "one row per trade_date and exchange (advancers close above their open)",
        body: r#"SELECT "trade_date", "exchange",
       COUNT(DISTINCT "symbol") AS "symbols",
       SUM(CASE WHEN "close" > "open" THEN 1 ELSE 0 END) AS "advancers",
       SUM(CASE WHEN "close" < "open" THEN 1 ELSE 0 END) AS "decliners",
       SUM("volume") AS "volume",
       CAST(AVG(CASE WHEN "open" > 0 THEN ("close" - "open") / "open" END) AS DECIMAL(12,6)) AS "avg_return"
FROM {s}."market_daily"
GROUP BY "trade_date", "exchange""#,
    },
    View {
        name: "v_data_quality",
        grain: "one row per vendor file acted on: rows read, clean, rejected (by reason), loaded",
        body: r#"SELECT "dataset", "source_key", "status", "rows_read", "rows_ok", "rows_rejected",
       "reject_reasons", "rows_loaded", "control_totals", "processed_at", "loaded_at", "load_ms", "manifest_key"
FROM {s}."{ledger}""#,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_view_reads_the_tables_its_query_names() {
        let reads: Vec<(&str, Vec<&str>)> = VIEWS.iter().map(|v| (v.name, v.reads())).collect();
        assert_eq!(
            reads,
            [
                ("v_portfolio_exposure", vec!["investor_holdings"]),
                ("v_top_issuers", vec!["investor_holdings"]),
                ("v_market_summary", vec!["market_daily"]),
                ("v_data_quality", vec![]),
            ]
        );
    }
}
