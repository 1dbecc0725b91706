//! Which dataset and vendor profile an object is, from its key in the raw bucket (docs/datasets.md,
//! decision 11). The table is data (`contracts/routes.toml`, or the `ROUTES` setting), so the
//! Lambda and the local runner route every key the same way.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

/// The routing table built into the binaries.
pub const BUILTIN: &str = include_str!("../../../contracts/routes.toml");

/// A routed object: the dataset's contract and the vendor profile to read it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Dataset (contract name).
    pub dataset: String,
    /// Vendor profile, or candidates separated by commas (`bse,bse_udiff`), of which the file's
    /// header picks one ([`crate::contract::Contract::candidates`]).
    pub profile: String,
}

/// A routing table that does not parse or names a bad pattern.
#[derive(Debug, thiserror::Error)]
#[error("routing table ({origin}): {message}")]
pub struct RouteError {
    origin: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    route: Vec<RawRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    pattern: String,
    dataset: String,
    /// One profile.
    profile: Option<String>,
    /// Or the layouts a vendor publishes, tried in order against each file's header.
    profiles: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
struct Rule {
    pattern: String,
    dataset: String,
    profile: String,
}

/// Key patterns in order; the first that matches routes the key.
#[derive(Debug, Clone)]
pub struct Routes {
    rules: Vec<Rule>,
    set: GlobSet,
}

impl Routes {
    /// Parses a table in the format of `contracts/routes.toml`; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Routes, RouteError> {
        let err = |message: String| RouteError {
            origin: origin.to_string(),
            message,
        };
        let table: Table = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let rules = table
            .route
            .into_iter()
            .map(|r| {
                let profile = match (r.profile, r.profiles) {
                    (Some(one), None) => one,
                    (None, Some(several)) if !several.is_empty() => several.join(","),
                    _ => {
                        return Err(err(format!(
                            "route `{}`: give `profile` or a non-empty `profiles`, not both",
                            r.pattern
                        )));
                    }
                };
                Ok(Rule {
                    pattern: r.pattern,
                    dataset: r.dataset,
                    profile,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut set = GlobSetBuilder::new();
        for rule in &rules {
            let glob = GlobBuilder::new(&rule.pattern)
                .literal_separator(true)
                .case_insensitive(true)
                .build()
                .map_err(|e| err(format!("pattern `{}`: {e}", rule.pattern)))?;
            set.add(glob);
        }
        let set = set.build().map_err(|e| err(e.to_string()))?;
        Ok(Routes { rules, set })
    }

    /// The table built into this binary.
    pub fn builtin() -> Routes {
        // A test parses BUILTIN, so this cannot fail in a released binary.
        Routes::from_toml(BUILTIN, "built-in").unwrap_or_else(|e| panic!("{e}"))
    }

    /// Routes a raw-bucket key; `None` for a key no pattern matches.
    ///
    /// ```
    /// use bondlake_core::route::Routes;
    /// let routes = Routes::builtin();
    /// assert_eq!(routes.route("market/XJPX/daily.csv").map(|r| r.profile), Some("jpx,jquants".into()));
    /// assert_eq!(routes.route("weekly/FT/RATES/2026-11-27.csv.gz").map(|r| r.dataset), Some("weekly_series".into()));
    /// assert_eq!(routes.route("tmp/x.csv"), None);
    /// ```
    pub fn route(&self, key: &str) -> Option<Route> {
        let first = self.set.matches(key).into_iter().min()?;
        let rule = &self.rules[first];
        Some(Route {
            dataset: rule.dataset.clone(),
            profile: rule.profile.clone(),
        })
    }

    /// Every (dataset, profile) the table names, for checking them against the contracts.
    pub fn targets(&self) -> impl Iterator<Item = (&str, &str)> {
        self.rules
            .iter()
            .map(|r| (r.dataset.as_str(), r.profile.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_routes_every_layout_and_nothing_else() {
        let r = Routes::builtin();
        let of = |k: &str| r.route(k).map(|r| format!("{}:{}", r.dataset, r.profile));
        assert_eq!(
            of("holdings/custodian_a/h.csv.gz").as_deref(),
            Some("investor_holdings:standard")
        );
        // An exchange's layouts, the header picking one (clean::choose_profile).
        assert_eq!(
            of("market/nyse/x.csv").as_deref(),
            Some("market_daily:us,us_flat")
        );
        assert_eq!(
            of("market/XNAS/x.csv").as_deref(),
            Some("market_daily:us,us_flat")
        );
        assert_eq!(
            of("market/JPX/x.csv").as_deref(),
            Some("market_daily:jpx,jquants")
        );
        assert_eq!(
            of("market/BSE/EQ251126.CSV").as_deref(),
            Some("market_daily:bse,bse_udiff")
        );
        assert_eq!(
            of("weekly/FT/FT-RATES/2026-11-27.csv.gz").as_deref(),
            Some("weekly_series:wide")
        );
        assert_eq!(
            of("kafka/market_daily/prices/p0-00001.csv").as_deref(),
            Some("market_daily:us")
        );
        for unrouted in [
            "market/LSE/x.csv",
            "weekly/FT/x.csv",
            "holdings/x.csv",
            "tmp/x.csv",
            "x.csv",
        ] {
            assert_eq!(of(unrouted), None, "{unrouted}");
        }
    }

    #[test]
    fn a_route_names_one_profile_or_a_list_never_both() {
        let both = Routes::from_toml(
            "[[route]]\npattern = \"a/**\"\ndataset = \"x\"\nprofile = \"y\"\nprofiles = [\"y\"]\n",
            "t",
        )
        .expect_err("both")
        .to_string();
        assert_eq!(
            both,
            "routing table (t): route `a/**`: give `profile` or a non-empty `profiles`, not both"
        );
        let none = Routes::from_toml("[[route]]\npattern = \"a/**\"\ndataset = \"x\"\n", "t");
        assert!(none.is_err());
    }

    #[test]
    fn bad_tables_name_the_problem() {
        let bad = Routes::from_toml(
            "[[route]]\npattern = \"a/{b\"\ndataset = \"x\"\nprofile = \"y\"\n",
            "ROUTES",
        )
        .map(|_| ())
        .expect_err("rejected")
        .to_string();
        assert!(
            bad.starts_with("routing table (ROUTES): pattern `a/{b`"),
            "{bad}"
        );
        let unknown = Routes::from_toml("[[route]]\npatern = \"a\"\n", "f.toml")
            .map(|_| ())
            .expect_err("rejected")
            .to_string();
        assert!(unknown.contains("unknown field `patern`"), "{unknown}");
    }
}
