//! Which dataset and vendor profile an object is, from its key in the raw bucket (DATASETS.md,
//! decision 11). The local runner, the Lambda and the template share this one table.

/// A routed object: the dataset's contract and the vendor profile to read it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Dataset (contract name).
    pub dataset: &'static str,
    /// Vendor profile.
    pub profile: &'static str,
}

/// Routes a raw-bucket key; `None` for a key outside the layout.
///
/// - `holdings/<vendor>/<file>` → investor_holdings
/// - `market/<EXCHANGE>/<file>` → market_daily (NYSE, NASDAQ: `us`; JPX: `jpx`; BSE: `bse`; MIC
///   codes XNYS, XNAS, XJPX, XBOM alike, any case)
/// - `weekly/<SOURCE>/<DATASET_CODE>/<file>` → weekly_series
/// - `kafka/<dataset>/...` → that dataset, with its default profile
///
/// ```
/// use bondlake::route::route;
/// assert_eq!(route("market/XJPX/daily.csv").map(|r| r.profile), Some("jpx"));
/// assert_eq!(route("weekly/FT/RATES/2026-11-27.csv.gz").map(|r| r.dataset), Some("weekly_series"));
/// assert_eq!(route("tmp/x.csv"), None);
/// ```
pub fn route(key: &str) -> Option<Route> {
    let parts: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    let r = |dataset, profile| Some(Route { dataset, profile });
    match parts.as_slice() {
        ["holdings", _vendor, _file, ..] => r("investor_holdings", "standard"),
        ["market", exchange, _file, ..] => match exchange.to_ascii_uppercase().as_str() {
            "NYSE" | "NASDAQ" | "XNYS" | "XNAS" => r("market_daily", "us"),
            "JPX" | "XJPX" => r("market_daily", "jpx"),
            "BSE" | "XBOM" => r("market_daily", "bse"),
            _ => None,
        },
        ["weekly", _source, _code, _file, ..] => r("weekly_series", "wide"),
        ["kafka", "investor_holdings", _, ..] => r("investor_holdings", "standard"),
        ["kafka", "market_daily", _, ..] => r("market_daily", "us"),
        ["kafka", "weekly_series", _, ..] => r("weekly_series", "wide"),
        _ => None,
    }
}
