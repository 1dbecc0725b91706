//! The invariants: output does not depend on chunking or threads; every generated defect is
//! rejected with its reason and every other record kept; reruns converge to the same objects;
//! broken contracts fail at load naming the file and the entry.

use bondlake_testkit::synth::{self, Spec, suggested_key};
use bondlake_tests::{Run, Trickle, assert_truth, gzip, options, run, run_with};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Options that roll a Parquet part every 64 KiB, so that a file of thousands of rows makes many.
fn small_parts() -> bondlake_core::Options {
    let mut small = options();
    small.output.part_bytes = 64 << 10;
    small.output.row_group_rows = 1024;
    small
}

/// Copies the files under `from` to the same places under `to`.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The raw object `key` (version `e1`) as an event names it.
fn raw_source(key: &str) -> bondlake_core::manifest::SourceRef {
    bondlake_core::manifest::SourceRef {
        bucket: "raw".into(),
        key: key.into(),
        etag: "e1".into(),
        bytes: 0,
        ..Default::default()
    }
}

fn generated(
    dataset: &str,
    profile: &str,
    rows: u64,
    seed: u64,
    dirty: f64,
) -> (Vec<u8>, synth::Generated) {
    let mut bytes = Vec::new();
    let spec = Spec {
        dataset: dataset.into(),
        profile: profile.into(),
        rows,
        seed,
        dirty,
    };
    let g = synth::generate(&spec, &mut bytes).expect("generate");
    (bytes, g)
}

/// Everything a run produced that must not depend on how it ran: rows, rejects, reasons, totals.
type Fingerprint = (
    Vec<BTreeMap<String, String>>,
    Vec<[String; 5]>,
    BTreeMap<String, u64>,
    BTreeMap<String, String>,
);

fn fingerprint(r: &Run) -> Fingerprint {
    let mut rows = r.rows.clone();
    rows.sort_by(|a, b| {
        (&a["_record_number"], a.get("series")).cmp(&(&b["_record_number"], b.get("series")))
    });
    (
        rows,
        r.rejects.clone(),
        r.manifest.reject_reasons.clone(),
        r.manifest.control_totals.clone(),
    )
}

#[test]
fn truth_round_trip_for_every_dataset_and_profile() {
    let common = [
        "ragged",
        "required",
        "invalid_number",
        "precision",
        "encoding",
        "duplicate_key",
    ];
    let market = ["invalid_date", "out_of_range", "ohlc_inconsistent"];
    for (dataset, profile, rows, kinds) in [
        (
            "investor_holdings",
            "standard",
            3000,
            vec![
                "invalid_date",
                "out_of_range",
                "invalid_enum",
                "check_digit",
                "matured",
                "market_value_mismatch",
            ],
        ),
        ("market_daily", "us", 3000, market.to_vec()),
        ("market_daily", "jpx", 3000, market.to_vec()),
        ("market_daily", "jquants", 3000, market.to_vec()),
        ("market_daily", "us_flat", 3000, market.to_vec()),
        ("market_daily", "bse", 2500, market[1..].to_vec()),
        ("market_daily", "bse_udiff", 3000, market.to_vec()),
        ("weekly_series", "wide", 1500, vec!["invalid_date"]),
    ] {
        let (bytes, g) = generated(dataset, profile, rows, 11, 0.15);
        let r = run_with(
            dataset,
            Some(profile),
            suggested_key(dataset, profile).as_str(),
            std::io::Cursor::new(gzip(&bytes)),
            &options(),
        );
        // Records-shaped files keep a record number per row; the wide one's rows are series.
        assert_truth(
            &format!("{dataset}/{profile}"),
            &r,
            &g.truth,
            rows,
            dataset != "weekly_series",
        );
        let dealt: std::collections::BTreeSet<&str> =
            g.truth.iter().map(|t| t.reason.as_str()).collect();
        let expected: std::collections::BTreeSet<&str> =
            common.iter().chain(kinds.iter()).copied().collect();
        assert_eq!(
            dealt, expected,
            "{dataset}/{profile}: every kind of reject the dataset has was dealt"
        );
        assert!(
            g.repaired > 50,
            "{dataset}/{profile}: repairable defects were dealt too"
        );
    }
}

#[test]
fn generator_is_deterministic() {
    let a = generated("investor_holdings", "standard", 500, 9, 0.2);
    let b = generated("investor_holdings", "standard", 500, 9, 0.2);
    let c = generated("investor_holdings", "standard", 500, 10, 0.2);
    assert_eq!(a.0, b.0);
    assert_eq!(a.1.truth, b.1.truth);
    assert_ne!(a.0, c.0);
}

#[test]
fn threads_do_not_change_the_output() {
    let (bytes, _) = generated("investor_holdings", "standard", 5000, 4, 0.1);
    let gz = gzip(&bytes);
    let mut reference = None;
    for threads in [1, 2, 4] {
        // Batches of 65,536 rows are past `MAX_INTERNED_ROWS`: their free text stays plain Utf8
        // and arrow-rs's writer interns it, the path before the cleaner did; 1,000 and 4,096
        // go through the cleaner's interning and the dictionary chunks.
        for batch_rows in [1000, 4096, 65_536] {
            let mut opts = options();
            opts.threads = threads;
            opts.batch_rows = batch_rows;
            let r = run_with(
                "investor_holdings",
                None,
                "holdings/x/h.csv.gz",
                std::io::Cursor::new(gz.clone()),
                &opts,
            );
            let f = fingerprint(&r);
            match &reference {
                None => reference = Some(f),
                Some(want) => assert!(
                    *want == f,
                    "threads {threads}, batch {batch_rows} changed the output"
                ),
            }
        }
    }
}

#[test]
fn rows_of_two_partitions_interleaved_with_duplicates_land_as_one_at_a_time() {
    // Two as-of dates alternating, then 30 records again: duplicates in both partitions, found
    // within a block and across blocks, must take out exactly the later copies.
    let (text, _) = generated("investor_holdings", "standard", 400, 8, 0.0);
    let text = String::from_utf8(text).expect("utf-8");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (i, line) in lines.iter_mut().enumerate().skip(1) {
        if i % 2 == 1 {
            *line = line.replacen("2026-11-25", "2026-11-24", 1);
        }
    }
    let again: Vec<String> = lines[10..40].to_vec();
    lines.extend(again);
    let text = lines.join("\n") + "\n";
    let go = |batch_rows: usize| {
        let mut opts = options();
        opts.batch_rows = batch_rows;
        run_with(
            "investor_holdings",
            None,
            "holdings/x/h.csv",
            std::io::Cursor::new(text.clone().into_bytes()),
            &opts,
        )
    };
    let one_at_a_time = go(1);
    assert_eq!(one_at_a_time.manifest.rows_rejected, 30);
    assert_eq!(one_at_a_time.manifest.outputs.len(), 2, "two partitions");
    for batch_rows in [7, 64, 100, 4096] {
        assert!(
            fingerprint(&go(batch_rows)) == fingerprint(&one_at_a_time),
            "batches of {batch_rows} changed the output"
        );
    }
}

#[test]
fn stage_times_are_counted_and_change_nothing() {
    use bondlake_core::stages::{Stage, StageTimes};
    let (bytes, _) = generated("investor_holdings", "standard", 20_000, 5, 0.1);
    let gz = gzip(&bytes);
    let go = |opts: &bondlake_core::Options| {
        run_with(
            "investor_holdings",
            None,
            "holdings/x/h.csv.gz",
            std::io::Cursor::new(gz.clone()),
            opts,
        )
    };
    for threads in [1, 2] {
        let mut opts = options();
        opts.threads = threads;
        let plain = fingerprint(&go(&opts));
        let times = std::sync::Arc::new(StageTimes::default());
        opts.stage_times = Some(times.clone());
        assert!(
            fingerprint(&go(&opts)) == plain,
            "timing changed the output"
        );
        for stage in Stage::ALL {
            assert!(
                times.get(stage) > 0,
                "{threads} thread(s): no time counted for {}:\n{}",
                stage.name(),
                times.lines()
            );
        }
    }
}

/// How a test feeds and runs the pipeline.
#[derive(Clone, Copy)]
struct Feed {
    step: usize,
    read_buffer: usize,
    batch_rows: usize,
    threads: usize,
}

fn chunked(dataset: &str, profile: &str, key: &str, bytes: &[u8], feed: Feed) -> Run {
    let mut opts = options();
    opts.read_buffer = feed.read_buffer;
    opts.batch_rows = feed.batch_rows;
    opts.threads = feed.threads;
    run_with(
        dataset,
        Some(profile),
        key,
        Trickle::new(bytes.to_vec(), feed.step),
        &opts,
    )
}

#[test]
fn chunking_does_not_change_the_output_at_the_classic_sizes() {
    // arrow-csv's own discipline: every fixture at read sizes 1, 3, 7, 100 and 65536.
    for (dataset, profile, compress) in [
        ("investor_holdings", "standard", true),
        ("market_daily", "jpx", false),
        ("market_daily", "bse", true),
        ("weekly_series", "wide", false),
    ] {
        let (text, _) = generated(dataset, profile, 200, 3, 0.3);
        let bytes = if compress { gzip(&text) } else { text };
        let key = suggested_key(dataset, profile);
        let whole = Feed {
            step: 1 << 20,
            read_buffer: 1 << 20,
            batch_rows: 65_536,
            threads: 1,
        };
        let reference = fingerprint(&chunked(dataset, profile, &key, &bytes, whole));
        for size in [1, 3, 7, 100, 65_536] {
            for batch in [1, 7, 100] {
                let threads = if batch == 7 { 2 } else { 1 };
                let feed = Feed {
                    step: size,
                    read_buffer: size,
                    batch_rows: batch,
                    threads,
                };
                let r = chunked(dataset, profile, &key, &bytes, feed);
                assert!(
                    fingerprint(&r) == reference,
                    "{dataset}/{profile}: read size {size}, batch {batch} changed the output"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_chunking_gives_the_same_output(seed in 0u64..1000, step in 1usize..4096, read_buffer in 1usize..70_000, batch in 1usize..300, threads in 1usize..3) {
        let (text, g) = generated("investor_holdings", "standard", 150, seed, 0.4);
        let key = "holdings/p/h.csv";
        let reference = fingerprint(&chunked("investor_holdings", "standard", key, &text, Feed { step: 1 << 20, read_buffer: 1 << 20, batch_rows: 65_536, threads: 1 }));
        let r = chunked("investor_holdings", "standard", key, &gzip(&text), Feed { step, read_buffer, batch_rows: batch, threads });
        prop_assert_eq!(r.manifest.rows_rejected as usize, g.truth.len());
        prop_assert!(fingerprint(&r) == reference);
    }
}

#[test]
fn a_rerun_writes_the_same_objects() {
    let (text, _) = generated("market_daily", "us", 4000, 8, 0.05);
    let gz = gzip(&text);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = bondlake_core::store::LocalStore::new(dir.path());
    let c = bondlake_tests::contract("market_daily");
    let source = bondlake_core::manifest::SourceRef {
        bucket: "raw".into(),
        key: "market/NYSE/eod.csv.gz".into(),
        etag: "\"abc\"".into(),
        bytes: gz.len() as u64,
        ..Default::default()
    };
    let snapshot = |dir: &std::path::Path| -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("dir").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if !p.to_string_lossy().contains("manifests/") {
                    files.insert(
                        p.strip_prefix(dir).expect("prefix").display().to_string(),
                        std::fs::read(&p).expect("read"),
                    );
                }
            }
        }
        files
    };
    let first = bondlake_core::process(
        &c,
        Some("us"),
        source.clone(),
        std::io::Cursor::new(gz.clone()),
        &store,
        &options(),
    )
    .expect("first run");
    let before = snapshot(dir.path());
    let second = bondlake_core::process(
        &c,
        Some("us"),
        source,
        std::io::Cursor::new(gz),
        &store,
        &options(),
    )
    .expect("second run");
    assert_eq!(first.manifest_key, second.manifest_key);
    assert_eq!(first.manifest.outputs, second.manifest.outputs);
    assert_eq!(
        before,
        snapshot(dir.path()),
        "byte-identical objects, nothing added"
    );
    assert!(before.len() > 2);
}

#[test]
fn large_inputs_roll_parts_and_keep_every_row() {
    let (text, g) = generated("investor_holdings", "standard", 40_000, 5, 0.01);
    let mut opts = options();
    opts.output.part_bytes = 256 << 10;
    opts.output.row_group_rows = 4096;
    let r = run_with(
        "investor_holdings",
        None,
        "holdings/x/big.csv",
        std::io::Cursor::new(text),
        &opts,
    );
    assert!(
        r.manifest.outputs.len() > 3,
        "parts rolled: {}",
        r.manifest.outputs.len()
    );
    let part_rows: u64 = r.manifest.outputs.iter().map(|o| o.rows).sum();
    assert_eq!(part_rows, r.manifest.rows_ok);
    assert_eq!(r.rows.len() as u64, r.manifest.rows_ok);
    assert_eq!(r.manifest.rows_rejected as usize, g.truth.len());
    for (k, o) in r.manifest.outputs.iter().enumerate() {
        assert!(o.key.ends_with(&format!("-{k:04}.parquet")), "{}", o.key);
        assert_eq!(o.partition["as_of_date"], "2026-11-25");
    }
}

#[test]
fn control_totals_are_exact_sums_of_the_clean_output() {
    let (text, _) = generated("investor_holdings", "standard", 3000, 12, 0.1);
    let r = run("investor_holdings", None, "holdings/x/h.csv", &text);
    for col in ["par_value", "market_value"] {
        let sum: i128 = r
            .column(col)
            .iter()
            .map(|v| v.replace('.', "").parse::<i128>().expect("decimal"))
            .sum();
        assert_eq!(
            bondlake_core::parse::format_decimal(sum, 2),
            r.manifest.control_totals[col],
            "{col}"
        );
    }
}

#[test]
fn broken_contracts_fail_at_load_naming_the_file_and_the_entry() {
    let good = bondlake_core::contract::BUILTIN[0].1;
    let cases = [
        (
            good.replacen("type = \"date\"", "type = \"datetime\"", 1),
            "unknown variant `datetime`",
        ),
        (
            good.replacen("name = \"investor_id\"", "name = \"as_of_date\"", 1),
            "column `as_of_date` (columns entry 2): duplicate column name",
        ),
        (
            good.replacen("max_length = 64", "max_length = 64\nminimum = 3", 1),
            "unknown field `minimum`",
        ),
        (
            good.replacen("rule = \"matured\"", "rule = \"stale\"", 1),
            "unknown variant `stale`",
        ),
        (
            good.replacen("gt = \"0\"", "gt = \"zero\"", 1),
            "column `par_value` (columns entry 14): bound gt = \"zero\" does not fit the column's type (invalid_number)",
        ),
        (
            good.replacen("key = [\"as_of_date\"", "key = [\"asof\"", 1),
            "key names unknown column `asof`",
        ),
        (
            good.replacen("kind = \"position\"", "kind = \"rank\"", 1),
            "unknown variant `rank`",
        ),
    ];
    for (text, want) in cases {
        let err = bondlake_core::Contract::from_toml("contracts/investor_holdings.toml", &text)
            .expect_err(want)
            .to_string();
        assert!(
            err.starts_with("contract contracts/investor_holdings.toml: "),
            "{err}"
        );
        assert!(err.contains(want), "{err}\n  should contain: {want}");
    }
    for (name, text) in bondlake_core::contract::BUILTIN {
        bondlake_core::Contract::from_toml(name, text).expect("the shipped contracts load");
    }
}

#[test]
fn duplicates_across_chunks_checked_by_different_threads() {
    use bondlake_tests::{HOLDINGS_ROW, holdings_file, holdings_row_with};
    let rows = vec![
        HOLDINGS_ROW.to_string(),
        holdings_row_with("account_id", "ACC2"),
        holdings_row_with("par_value", "2000000.00").replace("985000.00", "1970000.00"), // same key as 1
        holdings_row_with("account_id", "ACC3"),
        holdings_row_with("account_id", "ACC2"), // same key as 2
        holdings_row_with("coupon_rate", "99").replace("ACC1", "ACC4"), // rejected: claims no key
        holdings_row_with("account_id", "ACC4"),
    ];
    for threads in [1, 3] {
        let mut opts = options();
        opts.batch_rows = 1; // every record its own chunk, spread over the checkers
        opts.threads = threads;
        let r = run_with(
            "investor_holdings",
            None,
            "holdings/x/h.csv",
            std::io::Cursor::new(holdings_file(&rows)),
            &opts,
        );
        assert_eq!(
            r.reasons(),
            [
                (3, "duplicate_key".to_string(), String::new()),
                (5, "duplicate_key".to_string(), String::new()),
                (6, "out_of_range".to_string(), "coupon_rate".to_string()),
            ],
            "threads {threads}"
        );
        assert_eq!(
            r.column("_record_number"),
            ["1", "2", "4", "7"],
            "threads {threads}"
        );
        assert_eq!(
            r.manifest.control_totals["par_value"], "4000000.00",
            "the duplicate's par is not counted"
        );
        assert_eq!(r.manifest.rows_ok, 4);
    }
}

#[test]
fn a_rerun_removes_the_parts_the_previous_run_wrote_and_this_one_did_not() {
    let (text, _) = generated("investor_holdings", "standard", 20_000, 6, 0.02);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = bondlake_core::store::LocalStore::new(dir.path());
    let c = bondlake_tests::contract("investor_holdings");
    let source = raw_source("holdings/v/h.csv");
    let parts = |store: &bondlake_core::store::LocalStore| {
        use bondlake_core::store::ObjectStore;
        store.list("processed/").expect("list")
    };
    let small = small_parts();
    let first = bondlake_core::process(
        &c,
        None,
        source.clone(),
        std::io::Cursor::new(text.clone()),
        &store,
        &small,
    )
    .expect("run");
    assert!(first.manifest.outputs.len() > 2);
    let second = bondlake_core::process(
        &c,
        None,
        source.clone(),
        std::io::Cursor::new(text),
        &store,
        &options(),
    )
    .expect("rerun");
    assert_eq!(second.manifest.outputs.len(), 1);
    assert_eq!(
        parts(&store),
        [second.manifest.outputs[0].key.clone()],
        "only the parts the manifest lists"
    );
    // A rerun that fails leaves no part behind either, nor the old quarantine.
    let failed = bondlake_core::process(
        &c,
        None,
        source,
        std::io::Cursor::new(b"PK\x03\x04".to_vec()),
        &store,
        &options(),
    )
    .expect("run");
    assert_eq!(failed.manifest.status, bondlake_core::Status::Failed);
    assert!(parts(&store).is_empty());
    use bondlake_core::store::ObjectStore;
    assert!(store.list("quarantine/").expect("list").is_empty());
}

/// A rerun deletes only what this input's run writes: a previous manifest edited (or damaged) to
/// list a raw file, the warehouse, another input's part or a path out of the lake deletes none.
#[test]
fn a_rerun_deletes_only_its_own_outputs_whatever_the_previous_manifest_lists() {
    use bondlake_core::store::ObjectStore;
    let (text, _) = generated("investor_holdings", "standard", 2_000, 7, 0.02);
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = dir.path().join("lake");
    let store = bondlake_core::store::LocalStore::new(&lake);
    let c = bondlake_tests::contract("investor_holdings");
    let source = raw_source;
    let run = |key: &str| {
        bondlake_core::process(
            &c,
            None,
            source(key),
            std::io::Cursor::new(text.clone()),
            &store,
            &options(),
        )
        .expect("run")
    };
    let other = run("holdings/v/other.csv");
    let mine = run("holdings/v/h.csv");
    let precious = [
        "raw/precious.csv",
        "warehouse.duckdb",
        other.manifest.outputs[0].key.as_str(),
        other
            .manifest
            .quarantine
            .as_ref()
            .expect("quarantine")
            .key
            .as_str(),
    ];
    for key in &precious[..2] {
        store
            .put_if(key, b"keep me", bondlake_core::store::Precondition::Absent)
            .expect("put");
    }
    std::fs::write(dir.path().join("outside.txt"), "keep me").expect("outside");
    let mut edited = mine.manifest.clone();
    let escapes = [
        "processed/investor_holdings/as_of_date=2026-11-25/../../../raw/precious.csv",
        "../outside.txt",
    ];
    for key in precious.iter().chain(escapes.iter()) {
        edited.outputs.push(bondlake_core::manifest::OutputFile {
            key: key.to_string(),
            rows: 1,
            bytes: 1,
            partition: Default::default(),
        });
    }
    std::fs::write(
        lake.join(&mine.manifest_key),
        serde_json::to_vec(&edited).expect("json"),
    )
    .expect("edit the manifest");
    let again = run("holdings/v/h.csv");
    assert_eq!(again.manifest.outputs, mine.manifest.outputs);
    for key in precious {
        assert!(store.exists(key).expect("exists"), "{key} was deleted");
    }
    assert!(
        dir.path().join("outside.txt").exists(),
        "a file outside the lake was deleted"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Damage of any kind (bytes flipped, inserted or cut, gzip or not) never panics: the file
    /// either fails as a whole, with nothing left behind, or every record is accounted for.
    #[test]
    fn damaged_input_never_panics_and_never_loses_records(
        which in 0usize..5,
        seed in 0u64..500,
        edits in proptest::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 0..12),
        cut in proptest::option::of(any::<u16>()),
        compress in any::<bool>(),
        threads in 1usize..3,
    ) {
        let (dataset, profile) = [
            ("investor_holdings", "standard"),
            ("market_daily", "us"),
            ("market_daily", "jpx"),
            ("market_daily", "bse"),
            ("weekly_series", "wide"),
        ][which];
        let (text, _) = generated(dataset, profile, 60, seed, 0.2);
        let mut bytes = if compress { gzip(&text) } else { text };
        for (pos, byte, op) in edits {
            let at = usize::from(pos) % bytes.len().max(1);
            match op {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => { bytes.remove(at); }
            }
        }
        if let Some(cut) = cut {
            bytes.truncate(usize::from(cut) % (bytes.len() + 1));
        }
        let mut opts = options();
        opts.threads = threads;
        opts.batch_rows = 7;
        let r = run_with(dataset, Some(profile), &suggested_key(dataset, profile), std::io::Cursor::new(bytes), &opts);
        let m = &r.manifest;
        if m.status == bondlake_core::Status::Failed {
            prop_assert!(m.error.as_deref().is_some_and(|e| !e.is_empty()));
            prop_assert!(m.outputs.is_empty() && m.quarantine.is_none());
        } else {
            prop_assert_eq!(m.rows_read, m.rows_ok + m.rows_rejected);
            prop_assert_eq!(r.rejects.len() as u64, m.rows_rejected);
            if dataset != "weekly_series" {
                prop_assert_eq!(r.rows.len() as u64, m.rows_ok);
            }
        }
    }
}

#[test]
fn parquet_statistics_on_keys_partition_and_numbers_not_on_free_text() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let (text, _) = generated("investor_holdings", "standard", 500, 2, 0.0);
    let r = run("investor_holdings", None, "holdings/x/h.csv", &text);
    let file = std::fs::File::open(r.dir.path().join(&r.manifest.outputs[0].key)).expect("part");
    let reader = SerializedFileReader::new(file).expect("parquet");
    let rg = reader.metadata().row_group(0);
    let has_stats = |name: &str| {
        let i = (0..rg.num_columns())
            .find(|&i| rg.column(i).column_path().string() == name)
            .unwrap_or_else(|| panic!("no column {name}"));
        rg.column(i).statistics().is_some()
    };
    for with in [
        "as_of_date",
        "account_id",
        "security_id",
        "par_value",
        "maturity_date",
        "rating_rank",
        "_record_number",
    ] {
        assert!(has_stats(with), "{with} has statistics");
    }
    for without in ["investor_name", "issuer", "sector", "_source_key"] {
        assert!(!has_stats(without), "{without} has none");
    }
}

/// A run killed before its manifest leaves committed parts no manifest lists, and the hidden
/// temporaries of the parts it was writing: the rerun of the same input removes both.
#[test]
fn a_rerun_clears_what_a_killed_run_of_the_same_input_left() {
    use bondlake_core::store::ObjectStore;
    let (text, _) = generated("investor_holdings", "standard", 20_000, 9, 0.02);
    let c = bondlake_tests::contract("investor_holdings");
    let source = raw_source("holdings/v/h.csv");
    // The killed run wrote in another process: here, into a folder then copied as the lake (a
    // process clears a folder of dead writers' temporaries the first time it writes there).
    let killed_dir = tempfile::tempdir().expect("tempdir");
    let killed = bondlake_core::process(
        &c,
        None,
        source.clone(),
        std::io::Cursor::new(text.clone()),
        &bondlake_core::store::LocalStore::new(killed_dir.path()),
        &small_parts(),
    )
    .expect("run");
    assert!(killed.manifest.outputs.len() > 2);
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(killed_dir.path(), dir.path());
    let store = bondlake_core::store::LocalStore::new(dir.path());
    // As if killed before the manifest, while writing one more part (pid 1 is init, alive: its
    // temporary stays; a pid that cannot exist is a dead writer's).
    std::fs::remove_file(dir.path().join(&killed.manifest_key)).expect("no manifest");
    let folder = dir
        .path()
        .join(&killed.manifest.outputs[0].key)
        .parent()
        .expect("folder")
        .to_path_buf();
    let part_name = |n: u32| {
        let key = &killed.manifest.outputs[0].key;
        let file = key.rsplit('/').next().expect("file");
        format!(
            "{}{n:04}.parquet",
            &file[..file.len() - "0000.parquet".len()]
        )
    };
    let dead = folder.join(format!(".{}.4194305-0.tmp", part_name(0)));
    let alive = folder.join(format!(".{}.1-0.tmp", part_name(0)));
    std::fs::write(&dead, "half a part").expect("tmp");
    std::fs::write(&alive, "a live writer's").expect("tmp");
    let rerun = bondlake_core::process(
        &c,
        None,
        source,
        std::io::Cursor::new(text),
        &store,
        &options(),
    )
    .expect("rerun");
    assert_eq!(rerun.manifest.outputs.len(), 1);
    assert_eq!(
        store.list("processed/").expect("list"),
        [rerun.manifest.outputs[0].key.clone()],
        "only the parts the manifest lists"
    );
    assert!(!dead.exists(), "a dead writer's temporary is removed");
    assert!(alive.exists(), "a live writer's temporary stays");
}

/// Outputs are readable by their owner only (the quarantine holds investors' raw records), and
/// a folder that cannot be written is named in the error.
#[cfg(unix)]
#[test]
fn outputs_are_owner_only_and_an_unwritable_folder_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let (text, _) = generated("investor_holdings", "standard", 500, 10, 0.05);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = bondlake_core::store::LocalStore::new(dir.path());
    let c = bondlake_tests::contract("investor_holdings");
    let source = raw_source("holdings/v/h.csv");
    let out = bondlake_core::process(
        &c,
        None,
        source.clone(),
        std::io::Cursor::new(text.clone()),
        &store,
        &options(),
    )
    .expect("run");
    let quarantine = out
        .manifest
        .quarantine
        .as_ref()
        .expect("rejects")
        .key
        .clone();
    for key in [
        quarantine.as_str(),
        out.manifest.outputs[0].key.as_str(),
        out.manifest_key.as_str(),
    ] {
        let mode = std::fs::metadata(dir.path().join(key))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{key} is {mode:o}");
    }
    // A file where the quarantine folder should be (the kind of fault a full or read-only disk
    // gives, and one that root cannot override).
    let blocked = tempfile::tempdir().expect("tempdir");
    std::fs::write(blocked.path().join("quarantine"), "a file").expect("block");
    let err = bondlake_core::process(
        &c,
        None,
        source,
        std::io::Cursor::new(text),
        &bondlake_core::store::LocalStore::new(blocked.path()),
        &options(),
    )
    .expect_err("cannot write");
    let message = err.to_string();
    assert!(
        message.contains(&blocked.path().join("quarantine").display().to_string()),
        "{message}"
    );
}
