//! The layouts the exchanges publish today, each read with the built-in contracts through the
//! candidates its route names (the header picks the profile, no flag from the uploader), and a
//! security keeping one symbol across a change of layout.

use bondlake_core::manifest::Status;
use bondlake_core::route::Routes;
use bondlake_tests::{Run, gzip, options, run, run_with};

/// Processes `text` as the raw object `key`, with the profiles its built-in route names.
fn routed(key: &str, text: &[u8]) -> Run {
    let route = Routes::builtin().route(key).expect("routed");
    assert_eq!(route.dataset, "market_daily");
    run("market_daily", Some(&route.profile), key, text)
}

/// (symbol, trade_date, close, volume, isin) of each clean row, in record order.
fn prices(r: &Run) -> Vec<[String; 5]> {
    let mut rows: Vec<&std::collections::BTreeMap<String, String>> = r.rows.iter().collect();
    rows.sort_by_key(|row| row["_record_number"].parse::<u64>().unwrap_or(0));
    rows.into_iter()
        .map(|row| {
            ["symbol", "trade_date", "close", "volume", "isin"]
                .map(|c| row.get(c).cloned().unwrap_or_default())
        })
        .collect()
}

fn price(symbol: &str, day: &str, close: &str, volume: &str, isin: &str) -> [String; 5] {
    [symbol, day, close, volume, isin].map(String::from)
}

const UDIFF_HEADER: &str = "TradDt,BizDt,Sgmt,Src,FinInstrmTp,FinInstrmId,ISIN,TckrSymb,SctySrs,XpryDt,FininstrmActlXpryDt,StrkPric,OptnTp,FinInstrmNm,OpnPric,HghPric,LwPric,ClsPric,LastPric,PrvsClsgPric,UndrlygPric,SttlmPric,OpnIntrst,ChngInOpnIntrst,TtlTradgVol,TtlTrfVal,TtlNbOfTxsExctd,SsnId,NewBrdLotQty,Rmks,Rsvd1,Rsvd2,Rsvd3,Rsvd4";

#[test]
fn bse_udiff_bhavcopy_keeps_the_scrip_code_as_symbol_and_the_isin() {
    let mut text = format!(
        "{UDIFF_HEADER}\n\
         2026-11-25,2026-11-25,CM,BSE,STK,500002,INE117A01022,ABB,A,,,,,ABB LTD.,5090.05,5151.95,5060.00,5122.60,5122.60,5090.75,,5122.60,,,5391,27573530.45,1046,F1,1,,,,,\n\
         2026-11-25,2026-11-25,CM,BSE,STK,500325,INE002A01019,RELIANCE,A,,,,,RELIANCE INDUSTRIES LTD.,1290.00,1301.50,1285.10,1297.45,1297.45,1288.00,,1297.45,,,812345,1053812345.10,20456,F1,1,,,,,\n"
    );
    // Eight more scrips without an ISIN, so one reject stays under the 10% threshold.
    for k in 0..8 {
        text.push_str(&format!("2026-11-25,2026-11-25,CM,BSE,STK,6{k:05},,X{k},A,,,,,X{k} LTD.,10,11,9,10.5,10.5,10,,10.5,,,100,1050,3,F1,1,,,,,\n"));
    }
    let r = routed(
        "market/BSE/BhavCopy_BSE_CM_0_0_0_20261125_F_0000.CSV",
        text.as_bytes(),
    );
    assert_eq!(r.manifest.status, Status::Ok, "{:?}", r.manifest);
    assert_eq!(r.manifest.profile, "bse_udiff");
    assert_eq!(r.manifest.rows_ok, 9);
    assert_eq!(
        prices(&r)[..2],
        [
            price(
                "500002",
                "2026-11-25",
                "5122.600000",
                "5391",
                "INE117A01022"
            ),
            price("600000", "2026-11-25", "10.500000", "100", ""),
        ]
    );
    // The second ISIN's check digit is wrong (…018 is right): check_digit, as for holdings.
    assert_eq!(
        r.reasons(),
        [(2, "check_digit".to_string(), "isin".to_string())]
    );
    assert!(r.manifest.unknown_columns.is_empty(), "{:?}", r.manifest);
}

#[test]
fn bse_legacy_bhavcopy_before_and_after_2017_and_zipped() {
    // Before 2017: no date column (the name gives it), names padded, a trailing comma.
    let old = "SC_CODE,SC_NAME,SC_GROUP,SC_TYPE,OPEN,HIGH,LOW,CLOSE,LAST,PREVCLOSE,NO_TRADES,NO_OF_SHRS,NET_TURNOV,TDCLOINDI,\n\
               500002,ABB LTD.    ,A ,Q,5090.05,5151.95,5060.00,5122.60,5122.60,5090.75,1046,5391,27573530.00,,\n";
    let r = routed("market/BSE/EQ251126.CSV", old.as_bytes());
    assert_eq!(r.manifest.profile, "bse", "{:?}", r.manifest.error);
    assert_eq!(
        prices(&r),
        [price("500002", "2026-11-25", "5122.600000", "5391", "")]
    );
    assert!(r.manifest.unknown_columns.is_empty(), "{:?}", r.manifest);

    // From 2017: ISIN_CODE and TRADING_DATE (DD-Mon-YY) join, headers padded with spaces.
    let new = "SC_CODE ,SC_NAME ,SC_GROUP ,SC_TYPE ,OPEN ,HIGH ,LOW ,CLOSE ,LAST ,PREVCLOSE ,NO_TRADES ,NO_OF_SHRS ,NET_TURNOV ,TDCLOINDI ,ISIN_CODE ,TRADING_DATE ,FILLER2 ,FILLER3,\n\
               500002,ABB LTD.    ,A ,Q,5090.05,5151.95,5060.00,5122.60,5122.60,5090.75,1046,5391,27573530.00,,INE117A01022,25-Nov-26,,,\n";
    let r = routed("market/BSE/EQ251126.CSV", new.as_bytes());
    assert_eq!(
        prices(&r),
        [price(
            "500002",
            "2026-11-25",
            "5122.600000",
            "5391",
            "INE117A01022"
        )]
    );
    // The same file zipped, as BSE serves it (EQ251126_CSV.ZIP), and gzipped.
    let zipped = zip_one("EQ251126.CSV", new.as_bytes());
    let z = routed("market/BSE/EQ251126_CSV.ZIP", &zipped);
    assert_eq!(z.manifest.status, Status::Ok, "{:?}", z.manifest.error);
    assert_eq!(prices(&z), prices(&r));
    let g = routed("market/BSE/EQ251126.CSV.gz", &gzip(new.as_bytes()));
    assert_eq!(prices(&g), prices(&r));
}

#[test]
fn a_corrupt_or_crowded_zip_fails_naming_why() {
    let text = "SC_CODE,SC_NAME,SC_GROUP,SC_TYPE,OPEN,HIGH,LOW,CLOSE,LAST,PREVCLOSE,NO_TRADES,NO_OF_SHRS,NET_TURNOV,TDCLOINDI\n\
                500002,ABB LTD.,A,Q,5090.05,5151.95,5060.00,5122.60,5122.60,5090.75,1046,5391,27573530.00,\n";
    // Stored, not deflated: one changed digit still reads as CSV, and only the CRC catches it.
    let mut zipped = {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file(
            "EQ251126.CSV",
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored),
        )
        .expect("entry");
        w.write_all(text.as_bytes()).expect("write");
        w.finish().expect("zip").into_inner()
    };
    let at = zipped
        .windows(7)
        .position(|w| w == b"5122.60")
        .expect("the close in the stored data");
    zipped[at] = b'9';
    let r = routed("market/BSE/EQ251126_CSV.ZIP", &zipped);
    assert_eq!(r.manifest.status, Status::Failed);
    let error = r.manifest.error.clone().unwrap_or_default();
    assert!(
        error.starts_with(
            "s3://test/market/BSE/EQ251126_CSV.ZIP: truncated or corrupt zip archive: "
        ),
        "{error}"
    );
    assert!(r.rows.is_empty(), "no clean output from a corrupt archive");
    let half = zip_one("EQ251126.CSV", text.as_bytes());
    let r = routed("market/BSE/EQ251126_CSV.ZIP", &half[..half.len() / 2]);
    assert_eq!(
        r.manifest.error.as_deref(),
        Some(
            "s3://test/market/BSE/EQ251126_CSV.ZIP: truncated or corrupt zip archive: invalid Zip archive: Could not find EOCD"
        )
    );
    let two = {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for name in ["a.csv", "b.csv"] {
            w.start_file(name, zip::write::SimpleFileOptions::default())
                .expect("entry");
            w.write_all(text.as_bytes()).expect("write");
        }
        w.finish().expect("zip").into_inner()
    };
    let r = routed("market/BSE/EQ251126_CSV.ZIP", &two);
    assert_eq!(
        r.manifest.error.as_deref(),
        Some(
            "s3://test/market/BSE/EQ251126_CSV.ZIP: unsupported input: zip archive holds 2 files; expected exactly one CSV"
        )
    );
}

#[test]
fn jquants_daily_quotes_keep_the_four_character_local_code() {
    let text = "Date,Code,Open,High,Low,Close,UpperLimit,LowerLimit,Volume,TurnoverValue,AdjustmentFactor,AdjustmentOpen,AdjustmentHigh,AdjustmentLow,AdjustmentClose,AdjustmentVolume\n\
                2026-11-25,72030,2047.0,2069.5,2040.0,2065.5,0,0,21300.0,43845600.0,1.0,2047.0,2069.5,2040.0,2065.5,21300.0\n\
                2026-11-25,13010,,,,,0,0,0.0,0.0,1.0,,,,,0.0\n\
                2026-11-25,130A0,512.0,515.0,510.0,514.0,0,0,1200.0,616800.0,1.0,512.0,515.0,510.0,514.0,1200.0\n";
    let r = routed("market/JPX/jquants_daily_20261125.csv", text.as_bytes());
    assert_eq!(r.manifest.profile, "jquants");
    assert_eq!(
        prices(&r),
        [
            price("7203", "2026-11-25", "2065.500000", "21300", ""),
            price("130A", "2026-11-25", "514.000000", "1200", ""),
        ]
    );
    assert_eq!(r.column("adj_close")[0], "2065.500000");
    assert_eq!(r.column("exchange"), ["JPX", "JPX"]);
    // An untraded stock (empty prices) is not wanted: `required`, as JPX's own `-`.
    assert_eq!(
        r.reasons(),
        [(2, "required".to_string(), "open".to_string())]
    );
    assert!(r.manifest.unknown_columns.is_empty(), "{:?}", r.manifest);
}

#[test]
fn the_us_flat_file_dates_each_bar_in_new_york() {
    let text = "ticker,volume,open,close,high,low,window_start,transactions\n\
                AAPL,47531229,229.1,230.57,231.85,228.67,1795582800000000000,512345\n\
                MSFT,18000001,415.2,417.9,419.0,414.1,1782878400000000000,201234\n\
                BAD,10,1,1,1,1,2026-11-25,3\n";
    let r = routed("market/NASDAQ/2026-11-25.csv.gz", &gzip(text.as_bytes()));
    assert_eq!(r.manifest.profile, "us_flat");
    // 2026-11-25 05:00 UTC is midnight in New York (EST); 2026-07-01 04:00 UTC is (EDT).
    assert_eq!(
        prices(&r),
        [
            price("AAPL", "2026-11-25", "230.570000", "47531229", ""),
            price("MSFT", "2026-07-01", "417.900000", "18000001", ""),
        ]
    );
    assert_eq!(r.column("exchange"), ["NASDAQ", "NASDAQ"]);
    assert_eq!(r.column("currency"), ["USD", "USD"]);
    assert_eq!(
        r.reasons(),
        [(3, "invalid_date".to_string(), "trade_date".to_string())]
    );
}

#[test]
fn a_security_keeps_one_symbol_across_a_change_of_layout() {
    let yahoo = routed(
        "market/NASDAQ/nasdaq_eod_20261125.csv",
        b"Symbol,Date,Open,High,Low,Close,Adj Close,Volume\nAAPL,2026-11-25,229.1,231.85,228.67,230.57,230.57,47531229\n",
    );
    let flat = routed(
        "market/NASDAQ/2026-11-25.csv",
        b"ticker,volume,open,close,high,low,window_start,transactions\nAAPL,47531229,229.1,230.57,231.85,228.67,1795582800000000000,512345\n",
    );
    assert_eq!(prices(&yahoo), prices(&flat));
    let cp932 = encoding_rs::SHIFT_JIS
        .encode("日付,銘柄コード,始値,高値,安値,終値,出来高\n2026/11/25,7203,2047,2069.5,2040,2065.5,21300\n")
        .0
        .into_owned();
    let jpx = routed("market/JPX/jpx_daily_20261125.csv", &cp932);
    let jquants = routed(
        "market/JPX/jquants_daily_20261125.csv",
        b"Date,Code,Open,High,Low,Close,UpperLimit,LowerLimit,Volume,TurnoverValue,AdjustmentFactor,AdjustmentOpen,AdjustmentHigh,AdjustmentLow,AdjustmentClose,AdjustmentVolume\n2026-11-25,72030,2047.0,2069.5,2040.0,2065.5,0,0,21300.0,43845600.0,1.0,2047.0,2069.5,2040.0,2065.5,21300.0\n",
    );
    assert_eq!(jpx.manifest.profile, "jpx");
    assert_eq!(prices(&jpx), prices(&jquants));
    let legacy = routed(
        "market/BSE/EQ251126.CSV",
        b"SC_CODE,SC_NAME,SC_GROUP,SC_TYPE,OPEN,HIGH,LOW,CLOSE,LAST,PREVCLOSE,NO_TRADES,NO_OF_SHRS,NET_TURNOV,TDCLOINDI,ISIN_CODE,TRADING_DATE,FILLER2,FILLER3,\n500002,ABB LTD.,A,Q,5090.05,5151.95,5060.00,5122.60,5122.60,5090.75,1046,5391,27573530.00,,INE117A01022,25-Nov-26,,,\n",
    );
    let udiff = routed(
        "market/BSE/BhavCopy_BSE_CM_0_0_0_20261125_F_0000.CSV",
        format!("{UDIFF_HEADER}\n2026-11-25,2026-11-25,CM,BSE,STK,500002,INE117A01022,ABB,A,,,,,ABB LTD.,5090.05,5151.95,5060.00,5122.60,5122.60,5090.75,,5122.60,,,5391,27573530.45,1046,F1,1,,,,,\n").as_bytes(),
    );
    assert_eq!(prices(&legacy), prices(&udiff));
}

#[test]
fn a_file_that_fits_no_layout_of_its_exchange_names_the_profiles_tried_and_its_header() {
    let r = routed(
        "market/BSE/odd.csv",
        b"Scrip,Price,When\n500002,1,2026-11-25\n",
    );
    assert_eq!(r.manifest.status, Status::Failed);
    assert_eq!(r.manifest.profile, "bse,bse_udiff");
    assert_eq!(
        r.manifest.error.as_deref(),
        Some(
            "s3://test/market/BSE/odd.csv: the header fits no profile tried (bse: the object key gives trade_date = `odd.csv`, which is not valid (invalid_date); bse_udiff: required column `symbol` is missing (the header has 3 columns: Scrip, Price, When)); it has 3 columns: Scrip, Price, When"
        )
    );
    assert!(r.rows.is_empty());
}

#[test]
fn generated_files_of_each_new_layout_are_detected_clean_and_dirty() {
    for (profile, key) in [
        (
            "bse_udiff",
            "market/BSE/BhavCopy_BSE_CM_0_0_0_20261125_F_0000.CSV",
        ),
        ("jquants", "market/JPX/jquants_daily_20261125.csv"),
        ("us_flat", "market/NASDAQ/2026-11-25.csv.gz"),
        ("bse", "market/BSE/EQ251126.CSV"),
    ] {
        for dirty in [0.0, 0.1] {
            let mut bytes = Vec::new();
            let g = bondlake_testkit::synth::generate(
                &bondlake_testkit::synth::Spec {
                    dataset: "market_daily".into(),
                    profile: profile.into(),
                    rows: 1200,
                    seed: 5,
                    dirty,
                },
                &mut bytes,
            )
            .expect("generate");
            let route = Routes::builtin().route(key).expect("routed");
            let r = run_with(
                "market_daily",
                Some(&route.profile),
                key,
                std::io::Cursor::new(gzip(&bytes)),
                &options(),
            );
            assert_eq!(r.manifest.profile, profile, "{key}: {:?}", r.manifest.error);
            assert_eq!(r.manifest.rows_read, 1200, "{profile}");
            let want: Vec<(u64, String)> = g
                .truth
                .iter()
                .map(|t| (t.record, t.reason.clone()))
                .collect();
            let got: Vec<(u64, String)> = r
                .reasons()
                .into_iter()
                .map(|(n, why, _)| (n, why))
                .collect();
            assert_eq!(got, want, "{profile} at {dirty}");
            assert!(r.manifest.unknown_columns.is_empty(), "{profile}");
        }
    }
}

/// A zip archive of one deflated file, as BSE serves its bhavcopies.
fn zip_one(name: &str, bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(
        name,
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated),
    )
    .expect("entry");
    w.write_all(bytes).expect("write");
    w.finish().expect("zip").into_inner()
}
