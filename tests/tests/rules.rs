//! Every rule and repair of docs/datasets.md, one fixture each: the reject reason (and column) asserted
//! exactly, and repaired values read back from the Parquet output, decimals to the cent.

use bondlake_tests::{HOLDINGS_ROW, holdings_row_with, run, run_holdings};

/// One holdings record with `column` set to `value`: its reject, or its clean value of `column`.
fn one(column: &str, value: &str) -> Result<String, (String, String)> {
    let r = run_holdings(&[holdings_row_with(column, value)]);
    assert_eq!(r.manifest.rows_read, 1);
    assert_eq!(
        r.manifest.rows_ok + r.manifest.rows_rejected,
        1,
        "conservation"
    );
    match (r.rows.first(), r.rejects.first()) {
        (Some(row), None) => Ok(row[column].clone()),
        (None, Some(q)) => Err((q[2].clone(), q[1].clone())),
        other => panic!("a record must end in exactly one place: {other:?}"),
    }
}

fn rejected(column: &str, value: &str, reason: &str) {
    assert_eq!(
        one(column, value),
        Err((reason.to_string(), column.to_string())),
        "{column} = {value:?} must be rejected as {reason}"
    );
}

fn repaired(column: &str, value: &str, stored: &str) {
    assert_eq!(
        one(column, value),
        Ok(stored.to_string()),
        "{column} = {value:?} must be stored as {stored:?}"
    );
}

#[test]
fn the_reference_record_is_clean_and_exact() {
    let r = run_holdings(&[HOLDINGS_ROW.to_string()]);
    assert_eq!(r.rejects.len(), 0, "{:?}", r.rejects);
    let row = &r.rows[0];
    let want = [
        ("as_of_date", "2026-11-25"),
        ("investor_type", "bank"),
        ("security_id", "037833100"),
        ("coupon_rate", "3.450000"),
        ("maturity_date", "2036-05-15"),
        ("par_value", "1000000.00"),
        ("quantity", "1000.0000"),
        ("price", "98.500000"),
        ("market_value", "985000.00"),
        ("currency", "USD"),
        ("rating", "AA+"),
        ("rating_rank", "2"),
        ("credit_grade", "investment_grade"),
        ("days_to_maturity", "3459"),
        ("maturity_bucket", "5-10y"),
        ("_source_key", "holdings/v/h.csv"),
        ("_record_number", "1"),
        ("_ingested_at", "1764000000000000"),
    ];
    for (k, v) in want {
        assert_eq!(row[k], v, "column {k}");
    }
    assert_eq!(r.manifest.control_totals["par_value"], "1000000.00");
    assert_eq!(r.manifest.control_totals["market_value"], "985000.00");
}

#[test]
fn required_values() {
    for v in ["", "NULL", "n/a", "NA", "#N/A", "-", "  ", "\"\""] {
        rejected("issuer", v, "required");
    }
    repaired("isin", "N/A", "");
    repaired("sector", "-", "");
}

#[test]
fn dates_in_every_format_and_no_such_day() {
    for v in [
        "2026-11-25",
        "20261125",
        "11/25/2026",
        "25-11-2026",
        "2026/11/25",
        "25-Nov-2026",
        "25-NOV-2026",
    ] {
        repaired("as_of_date", v, "2026-11-25");
    }
    repaired("maturity_date", "3/5/2030", "2030-03-05");
    for v in [
        "2026-02-30",
        "2026-13-01",
        "25.11.2026",
        "Nov 25 2026",
        "2026-11-25T00:00",
    ] {
        rejected("maturity_date", v, "invalid_date");
    }
}

/// Dates outside the contract's `date_range` (1900-01-01..2199-12-31 by default) are typing
/// errors, not dates: year 0000 would also break readers such as pyarrow's `to_pylist()`.
#[test]
fn dates_outside_the_contracts_range_are_invalid() {
    for v in [
        "0000-01-01",
        "00000101",
        "1899-12-31",
        "2200-01-01",
        "9999-12-31",
    ] {
        rejected("maturity_date", v, "invalid_date");
    }
    repaired("maturity_date", "2199-12-31", "2199-12-31");
    repaired("as_of_date", "1900-01-01", "1900-01-01");
    // The range is a contract setting, checked at load.
    let text = include_str!("../../contracts/investor_holdings.toml").replacen(
        "date_formats",
        "date_range = [\"2000-01-01\", \"1999-12-31\"]\ndate_formats",
        1,
    );
    let err = bondlake_core::Contract::from_toml("h.toml", &text).expect_err("an empty range");
    assert!(err.to_string().contains("date_range"), "{err}");
}

#[test]
fn numbers_repaired_and_rejected() {
    repaired("par_value", "1,000,000.00", "1000000.00");
    repaired("par_value", "+1000000", "1000000.00");
    repaired("par_value", "10,00,000.00", "1000000.00");
    repaired("par_value", "1000000.0000", "1000000.00");
    repaired("ytd_return", "(2.5)", "-2.500000");
    repaired("ytd_return", ".5", "0.500000");
    repaired("ytd_return", "5.", "5.000000");
    rejected("par_value", "1e6", "invalid_number");
    rejected("par_value", "NaN", "invalid_number");
    rejected("par_value", "1,000.000,00", "invalid_number");
    rejected("par_value", "12x4.50", "invalid_number");
    rejected("par_value", "1000000.001", "precision");
    rejected("par_value", "12345678901234567.00", "precision");
}

#[test]
fn bounds_are_inclusive_and_checked_after_the_type() {
    repaired("coupon_rate", "25", "25.000000");
    repaired("coupon_rate", "0", "0.000000");
    rejected("coupon_rate", "25.000001", "out_of_range");
    rejected("coupon_rate", "-0.5", "out_of_range");
    rejected("coupon_rate", "250000", "precision");
    rejected("price", "0", "out_of_range");
    rejected("price", "1000", "out_of_range");
    rejected("yield_to_maturity", "50.5", "out_of_range");
    rejected("modified_duration", "-1", "out_of_range");
}

#[test]
fn enums_and_aliases() {
    repaired("investor_type", "HNW", "hnwi");
    repaired("investor_type", "High Net Worth", "hnwi");
    repaired("investor_type", "Mutual Fund", "mutual_fund");
    repaired("investor_type", "INSURER", "insurance");
    repaired("bond_type", "GOVT", "treasury");
    repaired("bond_type", "ust", "treasury");
    repaired("bond_type", "Certificate of Deposit", "cd");
    repaired("currency", "usd", "USD");
    repaired("currency", "INR", "INR");
    rejected("currency", "XXY", "invalid_enum");
    rejected("bond_type", "perpetual", "invalid_enum");
    rejected("investor_type", "family", "invalid_enum");
}

#[test]
fn ratings_are_case_sensitive_and_moodys_maps_to_sp() {
    repaired("rating", "Baa3", "BBB-");
    repaired("rating", "Ca", "CC");
    repaired("rating", "C", "C");
    repaired("rating", "NR", "NR");
    rejected("rating", "aaa", "invalid_enum");
    rejected("rating", "AAA+", "invalid_enum");
    rejected("rating", "baa3", "invalid_enum");
}

#[test]
fn derived_rating_and_maturity_columns() {
    let r = run_holdings(&[
        holdings_row_with("rating", "BBB-"),
        holdings_row_with("rating", "BB+").replace("ACC1", "ACC2"),
        holdings_row_with("rating", "NR").replace("ACC1", "ACC3"),
        holdings_row_with("maturity_date", "2026-11-25").replace("ACC1", "ACC4"),
        holdings_row_with("maturity_date", "2027-11-25").replace("ACC1", "ACC5"),
        holdings_row_with("maturity_date", "2046-11-25").replace("ACC1", "ACC6"),
    ]);
    assert_eq!(r.column("rating_rank"), ["10", "11", "", "2", "2", "2"]);
    assert_eq!(
        r.column("credit_grade"),
        [
            "investment_grade",
            "high_yield",
            "not_rated",
            "investment_grade",
            "investment_grade",
            "investment_grade"
        ]
    );
    assert_eq!(r.column("days_to_maturity")[3..], ["0", "365", "7305"]);
    assert_eq!(r.column("maturity_bucket")[3..], ["0-1y", "1-3y", "10y+"]);
}

#[test]
fn check_digits() {
    rejected("security_id", "037833101", "check_digit");
    rejected("security_id", "03783310", "check_digit");
    rejected("isin", "US0378331006", "check_digit");
    rejected("isin", "US037833100", "check_digit");
    repaired("security_id", " 037833100 ", "037833100");
    // The wrong length is `check_digit` too (the specification's table), also when it is
    // longer than the column's max_length.
    rejected("security_id", "0378331005", "check_digit");
    rejected("isin", "US03783310050", "check_digit");
    rejected("isin", "US0378331005US0378331005", "check_digit");
}

/// Every reason code the specification lists, for every kind of column it applies to: each case
/// is the one value that breaks the rule, in a record that is otherwise the reference record.
#[test]
fn each_reason_code_for_each_column_kind() {
    let cases: &[(&str, &str, &str)] = &[
        // required, for a string, an enum, a date, a decimal, an integer and a checked code
        ("investor_name", "", "required"),
        ("investor_type", "NULL", "required"),
        ("as_of_date", "", "required"),
        ("par_value", "N/A", "required"),
        ("quantity", "", "required"),
        ("security_id", "", "required"),
        // invalid_date
        ("maturity_date", "2026-02-30", "invalid_date"),
        // invalid_number
        ("par_value", "1,000,000.00.5", "invalid_number"),
        ("quantity", "ten", "invalid_number"),
        // precision
        ("coupon_rate", "3.123456789", "precision"),
        // out_of_range: a decimal's bounds, and a string's max_length (a bound of the column)
        ("coupon_rate", "-1", "out_of_range"),
        ("issuer", &"x".repeat(257), "out_of_range"),
        // invalid_enum, whatever the value's length (aliases may be longer than the values)
        ("bond_type", "equity", "invalid_enum"),
        ("currency", "USDX", "invalid_enum"),
        // check_digit: CUSIP and ISIN, digit and length
        ("security_id", "037833101", "check_digit"),
        ("isin", "US0378331005X", "check_digit"),
    ];
    for (column, value, reason) in cases {
        rejected(column, value, reason);
    }
}

#[test]
fn record_level_rules_come_after_columns_in_order() {
    // matured: maturity before as-of; a column error in the same record wins.
    let r = run_holdings(&[
        holdings_row_with("maturity_date", "2026-11-24"),
        holdings_row_with("maturity_date", "2026-11-24").replace("bank", "family"),
        // 1% of 985000 is 9850: 994850 is inside, 994850.01 outside.
        holdings_row_with("market_value", "994850.00").replace("ACC1", "ACC2"),
        holdings_row_with("market_value", "994850.01").replace("ACC1", "ACC3"),
        // matured and mismatched: matured comes first.
        holdings_row_with("market_value", "1.00").replace("2036-05-15", "2020-01-01"),
    ]);
    assert_eq!(
        r.reasons(),
        [
            (1, "matured".into(), "".into()),
            (2, "invalid_enum".into(), "investor_type".into()),
            (4, "market_value_mismatch".into(), "".into()),
            (5, "matured".into(), "".into()),
        ]
    );
    assert_eq!(r.rows.len(), 1);
}

#[test]
fn market_value_tolerance_has_a_one_unit_floor() {
    // Expected 0.985 (par 1.00 at 98.5): 1% would be a tenth of a cent, the floor is 1.00.
    let row = holdings_row_with("par_value", "1.00").replace("985000.00", "1.98");
    let r = run_holdings(&[row]);
    assert_eq!(r.rows.len(), 1, "{:?}", r.rejects);
    let row = holdings_row_with("par_value", "1.00").replace("985000.00", "1.99");
    let r = run_holdings(&[row]);
    assert_eq!(
        r.reasons(),
        [(1, "market_value_mismatch".into(), "".into())]
    );
}

#[test]
fn duplicate_keys_compare_normalised_values_and_rejects_do_not_claim_keys() {
    let r = run_holdings(&[
        holdings_row_with("coupon_rate", "99"), // rejected: does not claim the key
        HOLDINGS_ROW.to_string(),               // first clean: stays
        holdings_row_with("as_of_date", "11/25/2026"), // same key, other date format
        holdings_row_with("account_id", " ACC1 "), // same key after trimming
        holdings_row_with("account_id", "ACC2"), // another key
    ]);
    assert_eq!(
        r.reasons(),
        [
            (1, "out_of_range".into(), "coupon_rate".into()),
            (3, "duplicate_key".into(), "".into()),
            (4, "duplicate_key".into(), "".into()),
        ]
    );
    assert_eq!(r.column("_record_number"), ["2", "5"]);
}

#[test]
fn ragged_rows_are_rejected_and_the_file_goes_on() {
    let r = run_holdings(&[
        format!("{HOLDINGS_ROW},extra"),
        HOLDINGS_ROW
            .rsplit_once(',')
            .map(|(a, _)| a.to_string())
            .unwrap_or_default(),
        ",,,,,,,,,,,,,,,,,,,,".into(),
        holdings_row_with("account_id", "ACC9"),
    ]);
    assert_eq!(
        r.reasons().iter().map(|x| x.1.as_str()).collect::<Vec<_>>(),
        ["ragged", "ragged", "ragged"]
    );
    assert_eq!(r.rows.len(), 1);
    assert_eq!(
        r.rejects[0][4],
        format!("{HOLDINGS_ROW},extra"),
        "the raw record is kept whole"
    );
}

#[test]
fn header_matches_case_insensitively_in_any_order_with_aliases_and_reports_unknown_columns() {
    let names: Vec<&str> = bondlake_tests::HOLDINGS_HEADER.split(',').collect();
    let values: Vec<&str> = HOLDINGS_ROW.split(',').collect();
    let mut order: Vec<usize> = (0..names.len()).rev().collect();
    order.push(usize::MAX);
    let header: Vec<String> = order
        .iter()
        .map(|&j| match j {
            usize::MAX => "Vendor Note".to_string(),
            5 => " CUSIP ".to_string(),
            13 => "Par".to_string(),
            _ => names[j].to_uppercase(),
        })
        .collect();
    let row: Vec<&str> = order
        .iter()
        .map(|&j| if j == usize::MAX { "hello" } else { values[j] })
        .collect();
    let text = format!("{}\n{}\n", header.join(","), row.join(","));
    let r = run(
        "investor_holdings",
        None,
        "holdings/v/h.csv",
        text.as_bytes(),
    );
    assert_eq!(r.rejects.len(), 0, "{:?}", r.rejects);
    assert_eq!(r.rows[0]["security_id"], "037833100");
    assert_eq!(r.rows[0]["par_value"], "1000000.00");
    assert_eq!(r.manifest.unknown_columns, ["Vendor Note"]);
}

#[test]
fn quoting_whitespace_bom_crlf_and_blank_lines() {
    let row = HOLDINGS_ROW
        .replace("First Bank", "\"First Bank, N.A.\nc/o \"\"Trust\"\" Dept\"")
        .replace(",Apple Inc,", ",  \"Apple Inc\"  ,")
        .replace(",Technology,", ",\u{a0}Technology\t,");
    let text = format!(
        "\u{feff}{}\r\n\r\n{}\r\n\r\n",
        bondlake_tests::HOLDINGS_HEADER,
        row
    );
    let r = run(
        "investor_holdings",
        None,
        "holdings/v/h.csv",
        text.as_bytes(),
    );
    assert_eq!(r.rejects.len(), 0, "{:?}", r.rejects);
    assert_eq!(
        r.manifest.rows_read, 1,
        "blank lines are neither counted nor numbered"
    );
    assert_eq!(
        r.rows[0]["investor_name"],
        "First Bank, N.A.\nc/o \"Trust\" Dept"
    );
    assert_eq!(r.rows[0]["issuer"], "Apple Inc");
    assert_eq!(r.rows[0]["sector"], "Technology");
    assert_eq!(
        r.rows[0]["as_of_date"], "2026-11-25",
        "the BOM does not stick to the first header"
    );
}

#[test]
fn market_us_takes_the_exchange_from_the_key_and_the_currency_from_the_exchange() {
    let text = "Symbol,Date,Open,High,Low,Close,Adj Close,Volume\n\
                IBM,2026-11-25,100,110,90,105,105,\"1,234,567\"\n\
                MSFT,2026-11-25,100,110,90,111,,1234567.0\n\
                AAPL,2026-11-25,100,110,101,105,105,100\n\
                GOOG,2026-11-25,-,110,90,105,105,100\n\
                ORCL,2026-11-25,1,2,1,2,2,12.5\n\
                IBM,11/25/2026,1,2,1,2,2,1\n";
    let r = run(
        "market_daily",
        Some("us"),
        "market/XNAS/nasdaq.csv",
        text.as_bytes(),
    );
    assert_eq!(r.column("exchange"), ["NASDAQ"]);
    assert_eq!(r.column("currency"), ["USD"]);
    assert_eq!(r.column("volume"), ["1234567"]);
    assert_eq!(
        r.reasons(),
        [
            (2, "ohlc_inconsistent".into(), "".into()),
            (3, "ohlc_inconsistent".into(), "".into()),
            (4, "required".into(), "open".into()),
            (5, "invalid_number".into(), "volume".into()),
            (6, "duplicate_key".into(), "".into()),
        ]
    );
    assert_eq!(r.manifest.control_totals["volume"], "1234567");
}

#[test]
fn market_us_exchange_column_wins_over_the_key() {
    let text = "Symbol,Date,Open,High,Low,Close,Adj Close,Volume,Exchange,Currency\n\
                IBM,2026-11-25,100,110,90,105,105,1,nyse,\n\
                IBM,2026-11-25,100,110,90,105,105,1,,\n\
                SONY,2026-11-25,100,110,90,105,105,1,XNYS,JPY\n";
    let r = run(
        "market_daily",
        Some("us"),
        "market/NASDAQ/f.csv",
        text.as_bytes(),
    );
    assert_eq!(r.column("exchange"), ["NYSE", "NASDAQ", "NYSE"]);
    assert_eq!(
        r.column("currency"),
        ["USD", "USD", "JPY"],
        "a non-home currency is kept as given"
    );
}

#[test]
fn jpx_in_shift_jis_with_japanese_headers() {
    let text = "日付,銘柄コード,始値,高値,安値,終値,出来高\n\
                2026/11/25,7203,\"2,500.5\",2600,2400,2550,1000\n\
                2026/11/25,6758,-,-,-,-,0\n\
                2026-11-25,9984,1,2,1,2,3\n";
    let (bytes, _, bad) = encoding_rs::SHIFT_JIS.encode(text);
    assert!(!bad);
    let mut bytes = bytes.into_owned();
    // A record with a byte that is not CP932.
    bytes.extend_from_slice(b"2026/11/25,8306\xFF,1,2,1,2,3\n");
    let r = run("market_daily", Some("jpx"), "market/JPX/daily.csv", &bytes);
    assert_eq!(r.column("exchange"), ["JPX"]);
    assert_eq!(r.column("currency"), ["JPY"]);
    assert_eq!(r.column("open"), ["2500.500000"]);
    assert_eq!(
        r.reasons(),
        [
            (2, "required".into(), "open".into()),
            (3, "invalid_date".into(), "trade_date".into()),
            (4, "encoding".into(), "銘柄コード".into()),
        ]
    );
    assert_eq!(
        r.rejects[2][3], "8306\\xFF",
        "the bad byte is kept, escaped"
    );
}

#[test]
fn bse_bhavcopy_date_from_the_file_name_and_trailing_comma() {
    let text = "SC_CODE,SC_NAME,SC_GROUP,SC_TYPE,OPEN,HIGH,LOW,CLOSE,LAST,PREVCLOSE,NO_TRADES,NO_OF_SHRS,NET_TURNOV,TDCLOINDI,\n\
                500325,RELIANCE,A ,Q,1300.00,1320.50,1290.00,1310.25,1310.00,1295.00,5000,123456,161735000.00,,\n\
                500325,RELIANCE,A ,Q,1300.00,1320.50,1290.00,1310.25,1310.00,1295.00,5000,123456,161735000.00,,\n";
    let r = run(
        "market_daily",
        Some("bse"),
        "market/BSE/EQ251126.CSV",
        text.as_bytes(),
    );
    assert_eq!(r.column("trade_date"), ["2026-11-25"]);
    assert_eq!(r.column("symbol"), ["500325"]);
    assert_eq!(r.column("volume"), ["123456"]);
    assert_eq!(r.column("currency"), ["INR"]);
    assert_eq!(r.reasons(), [(2, "duplicate_key".into(), "".into())]);
    assert!(
        r.manifest.unknown_columns.is_empty(),
        "{:?}",
        r.manifest.unknown_columns
    );
    assert_eq!(
        r.rows[0]
            .keys()
            .filter(|k| k.starts_with("trade_date"))
            .count(),
        1
    );
}

#[test]
fn weekly_series_is_made_long_with_the_weekly_rule() {
    // 2026-11-16 is a Monday; weeks end on Fridays (2026-11-20, 2026-11-27).
    let text = "Date,US10Y,HY_OAS\n\
                2026-11-16,4.10,3.00\n\
                2026-11-20,4.20,.\n\
                2026-11-18,4.15,3.10\n\
                2026-11-23,4.30,\n\
                2026-11-24,x,3.30\n\
                11/16/2026,1,1\n";
    let r = run(
        "weekly_series",
        None,
        "weekly/QUANDL/FRED-DGS10/2026-11-27.csv",
        text.as_bytes(),
    );
    assert_eq!(r.manifest.rows_read, 6);
    assert_eq!(r.manifest.rows_ok, 4);
    assert_eq!(r.manifest.rows_written, 4);
    assert_eq!(
        r.reasons(),
        [
            (5, "invalid_number".into(), "US10Y".into()),
            (6, "duplicate_key".into(), "".into())
        ]
    );
    let got: Vec<(String, String, String, String, String)> = r
        .rows
        .iter()
        .map(|x| {
            (
                x["series"].clone(),
                x["week_ending"].clone(),
                x["observation_date"].clone(),
                x["value"].clone(),
                x["source"].clone(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str, d: &str| {
        (
            a.to_string(),
            b.to_string(),
            c.to_string(),
            d.to_string(),
            "QUANDL".to_string(),
        )
    };
    let mut want = vec![
        s("HY_OAS", "2026-11-20", "2026-11-18", "3.100000"), // the latest is a gap: the latest non-null wins
        s("HY_OAS", "2026-11-27", "2026-11-23", ""),         // no value all week: null, and counted
        s("US10Y", "2026-11-20", "2026-11-20", "4.200000"),
        s("US10Y", "2026-11-27", "2026-11-23", "4.300000"),
    ];
    let mut got_sorted = got.clone();
    got_sorted.sort();
    want.sort();
    assert_eq!(got_sorted, want);
    assert_eq!(r.manifest.null_values, 1);
    assert_eq!(r.column("dataset_code"), ["FRED-DGS10"; 4]);
    // Two rejects of six records: over the 10% threshold, so the file feeds no trends (the
    // weekly job reads what the loader would load: `ok` manifests).
    assert_eq!(
        r.manifest.status,
        bondlake_core::Status::RejectedOverThreshold
    );
    assert!(r.trends().is_empty());
}

#[test]
fn weekly_trend_features() {
    let mut text = String::from("Date,S\n");
    // 14 Fridays, values 1..14.
    let first = bondlake_core::parse::days_from_civil(2026, 8, 28).expect("a Friday");
    for k in 0..14 {
        text.push_str(&format!(
            "{},{}\n",
            bondlake_core::parse::format_date(first + 7 * k),
            k + 1
        ));
    }
    let r = run(
        "weekly_series",
        None,
        "weekly/FT/RATES/f.csv",
        text.as_bytes(),
    );
    // The features are the weekly job's, over the series' history (here, this one file).
    let rows = r.trends();
    let last = &rows[13];
    assert_eq!(last["value"], "14.000000");
    assert_eq!(last["wow_change"], "1.000000");
    assert_eq!(last["wow_pct"], "7.692308");
    assert_eq!(last["ma_4w"], "12.500000");
    assert_eq!(last["ma_13w"], "8.000000");
    // z = (14 - 8) / sd(2..14); population sd of 13 consecutive integers is sqrt(14).
    assert_eq!(last["zscore_13w"], format!("{:.6}", 6.0 / 14f64.sqrt()));
    assert_eq!(rows[2]["ma_4w"], "", "fewer than four weeks: no average");
}

#[test]
fn header_names_ignore_case_spaces_and_punctuation() {
    let header = bondlake_tests::HOLDINGS_HEADER
        .replace("as_of_date", "As Of Date")
        .replace("investor_type", "InvestorType")
        .replace("market_value", "MARKET-VALUE")
        .replace("yield_to_maturity", "Yield To Maturity (%)");
    let text = format!("{header}\n{HOLDINGS_ROW}\n");
    let r = run(
        "investor_holdings",
        None,
        "holdings/v/h.csv",
        text.as_bytes(),
    );
    assert_eq!(r.rejects.len(), 0, "{:?}", r.rejects);
    assert!(
        r.manifest.unknown_columns.is_empty(),
        "{:?}",
        r.manifest.unknown_columns
    );
    assert_eq!(r.rows[0]["yield_to_maturity"], "4.100000");
    let text = "symbol,DATE,open,high,low,close,adj_close,volume\nIBM,2026-11-25,1,2,1,2,2,1\n";
    let r = run(
        "market_daily",
        Some("us"),
        "market/NYSE/f.csv",
        text.as_bytes(),
    );
    assert_eq!(r.rows.len(), 1, "{:?}", r.rejects);
}

#[test]
fn lines_of_only_spaces_are_blank_lines() {
    let text = format!(
        "{}\n   \n{HOLDINGS_ROW}\n\t\n \t \n{}\n",
        bondlake_tests::HOLDINGS_HEADER,
        holdings_row_with("account_id", "ACC2")
    );
    let r = run(
        "investor_holdings",
        None,
        "holdings/v/h.csv",
        text.as_bytes(),
    );
    assert_eq!(r.manifest.rows_read, 2);
    assert_eq!(r.column("_record_number"), ["1", "2"]);
}
