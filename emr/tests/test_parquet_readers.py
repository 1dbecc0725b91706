"""Spark reads the Parquet the cleaner writes as pyarrow reads it, the columns whose dictionary
chunks bondlake writes itself (enums, bucket labels, `_source_key`, `_source_order`, dates and
32-bit integers: shared/bondlake-core/src/dict_chunk.rs) included, nulls and key columns too."""

import glob
import os

import pyarrow.parquet as pq

import harness

# Per dataset: the generator's profile, an object key its routes take, the columns written from
# dictionary indices, and how many distinct values the first of them holds at least (one
# exchange a market file).
CASES = {
    "investor_holdings": (
        None,
        "holdings/custodian_a/holdings_20261125.csv.gz",
        ["rating", "investor_type", "bond_type", "currency", "credit_grade", "maturity_bucket",
         "maturity_date", "days_to_maturity", "rating_rank"],
        20,
    ),
    "market_daily": (
        "us",
        "market/NYSE/nyse_eod_20261125.csv.gz",
        ["exchange", "currency"],
        1,
    ),
}


def test_spark_reads_dictionary_chunks_as_pyarrow_does(spark_session, workdir):
    for n, (dataset, (profile, key, columns, distinct)) in enumerate(CASES.items()):
        source = os.path.join(workdir, f"readers-{dataset}.csv.gz")
        gen = ["gen", "--dataset", dataset, "--rows", "20000", "--seed", str(n + 3),
               "--dirty", "0.2", "--out", source]
        harness.run(gen + (["--profile", profile] if profile else []))
        out = os.path.join(workdir, f"readers-{dataset}")
        # Small batches and row groups: many batches per row group, several row groups per part.
        harness.run(["process", "--dataset", dataset, "--input", source, "--source-key", key,
                     "--out", out, "--threads", "2", "--batch-rows", "500",
                     "--row-group-rows", "3000"]
                    + (["--profile", profile] if profile else []))
        files = sorted(glob.glob(os.path.join(out, "processed", "**", "*.parquet"), recursive=True))
        assert files, f"{dataset}: no Parquet written"
        wanted = columns + ["_source_key", "_source_order", "_record_number"]
        expected = []
        for f in files:
            expected += [tuple(r[c] for c in wanted) for r in pq.read_table(f, columns=wanted).to_pylist()]
        got = [tuple(r) for r in spark_session.read.parquet(*files).select(*wanted).collect()]
        assert len(got) == len(expected) > 10000, dataset
        assert sorted(got, key=lambda r: r[-1]) == sorted(expected, key=lambda r: r[-1]), dataset
        # The values came through, not one of them for all.
        assert len({r[0] for r in got}) >= distinct, dataset
        assert dict(spark_session.read.parquet(*files).dtypes)[columns[0]] == "string"
