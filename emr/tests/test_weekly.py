"""The weekly job on Spark (emr/weekly_trends.py, local[2], a Derby metastore) against `bondlake
weekly` on the same processed inputs: the same keys, the same manifest, the same trends cell by
cell (decimals exact), over the edge cases; the Hive table in ORC (zstd) read back with Spark and
with pyarrow's ORC reader; and a later file rebuilding only its weeks' partitions."""

import datetime
import glob
import json
import os
import shutil

import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

import harness
import weekly_trends

FIRST = datetime.date(2026, 1, 2)  # a Friday
MAX = "999999999999.999999"


def friday(k):
    return (FIRST + datetime.timedelta(days=7 * k)).isoformat()


def write(root, key, header, rows, written):
    """A raw weekly file at `key` whose modification time (its event time) is `written`."""
    path = os.path.join(root, "raw", key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(",".join(["Date"] + header) + "\n")
        for date, cells in rows:
            f.write(",".join([date] + cells) + "\n")
    t = written.timestamp()
    os.utime(path, (t, t))


def edge_files(root):
    """Every edge case the trends definition has, over three vendors."""
    t0 = datetime.datetime(2026, 4, 17, 18, tzinfo=datetime.timezone.utc)
    series = ["STEADY", "GAPPY", "FLAT", "ZERO", "NEG", "TIES", "BIG"]

    def cell(s, k):
        return {
            "STEADY": str(k + 1),
            "GAPPY": "" if k == 5 else "%d.25" % (10 + k),
            "FLAT": "5",
            "ZERO": "0" if k % 2 == 0 else "3",
            "NEG": "-%d.5" % k,
            "TIES": ["0.000001", "0.000002", "0.000000", "0.000003"][k % 4],
            "BIG": MAX if k % 2 == 0 else "-" + MAX,
        }[s]

    write(root, "weekly/FT/RATES/2026-04-17.csv", series,
          [(friday(k), [cell(s, k) for s in series]) for k in range(16)], t0)
    write(root, "weekly/DOWJONES/DJ-HOLES/2026-04-17.csv", ["HOLE"],
          [(friday(k), [str(100 + k)]) for k in range(16) if k != 7], t0 + datetime.timedelta(minutes=5))
    write(root, "weekly/QUANDL/FRED-X/2026-04-17.csv", ["STEADY", "US10Y"],
          [(friday(k), [str(2 * k), "%d.%02d" % (4 + k % 3, k)]) for k in range(16)], t0 + datetime.timedelta(minutes=10))
    # Week 3 of FT's STEADY again, later, with another value: the later file wins.
    write(root, "weekly/FT/RATES/2026-04-24.csv", ["STEADY"], [(friday(3), ["40"])], t0 + datetime.timedelta(days=7))


def process(root):
    done = harness.run(["run", "--root", root, "--once", "--no-warehouse"], check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def trends(root, key):
    """The rows of the parts the manifest at `key` lists, sorted by the trends' key."""
    rows = []
    with open(os.path.join(root, key)) as f:
        for o in json.load(f)["outputs"]:
            rows.extend(pq.read_table(os.path.join(root, o["key"])).to_pylist())
    return sorted(rows, key=lambda r: (r["source"], r["dataset_code"], r["series"], r["week_ending"]))


def manifest(root, key):
    """The manifest but what depends on when and by which writer: its times, its parts' sizes."""
    with open(os.path.join(root, key)) as f:
        m = json.load(f)
    for t in ("started_at", "finished_at"):
        m.pop(t)
    for o in m["outputs"]:
        o.pop("bytes")
    return m


def state(root):
    with open(os.path.join(root, "state", "weekly_trends.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def lakes(workdir):
    rust, spark = os.path.join(workdir, "weekly-rust"), os.path.join(workdir, "weekly-spark")
    edge_files(rust)
    process(rust)
    shutil.copytree(rust, spark)
    return rust, spark


def run_both(spark_session, rust, spark, workdir):
    env = {k: v for k, v in os.environ.items() if k != "BONDLAKE_MYSQL"}
    done = harness.run(["weekly", "--root", rust], check=False, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    args = weekly_trends.argparse.Namespace(
        processed="file://" + spark, bucket="processed", contracts=os.path.join(harness.ROOT, "contracts"),
        database="bondlake", database_location=None,
    )
    from pyspark.sql import types as T
    assert weekly_trends.run(spark_session, args, T) == 0
    return state(rust)["manifest"], state(spark)["manifest"]


def orc_files(warehouse):
    """Partition folder → its ORC files and their modification times."""
    out = {}
    for path in sorted(glob.glob(os.path.join(warehouse, "bondlake.db", "weekly_trends", "*", "*"))):
        if os.path.basename(path).startswith((".", "_")):
            continue
        out.setdefault(os.path.basename(os.path.dirname(path)), []).append((os.path.basename(path), os.path.getmtime(path)))
    return out


def test_spark_and_bondlake_weekly_agree_and_the_hive_table_holds_the_trends(spark_session, lakes, workdir, warehouse):
    rust, spark = lakes
    rust_key, spark_key = run_both(spark_session, rust, spark, workdir)
    assert spark_key == rust_key, "the same keys"
    assert manifest(spark, spark_key) == manifest(rust, rust_key)
    a, b = trends(rust, rust_key), trends(spark, spark_key)
    assert len(a) == 7 * 16 + 15 + 2 * 16
    assert a == b, "cell by cell"
    # A few values worked out by hand (the Rust tests hold the rest).
    row = {(r["dataset_code"], r["series"], r["week_ending"].isoformat()): r for r in b}
    assert str(row[("RATES", "STEADY", friday(3))]["value"]) == "40.000000"
    assert str(row[("RATES", "STEADY", friday(3))]["wow_pct"]) == "1233.333333"
    assert row[("RATES", "BIG", friday(12))]["wow_change"] is None
    assert str(row[("RATES", "TIES", friday(3))]["ma_4w"]) == "0.000002"
    assert row[("DJ-HOLES", "HOLE", friday(8))]["wow_change"] is None
    # The Hive table: every row, read back by Spark and by pyarrow's ORC reader, zstd.
    hive = spark_session.table("bondlake.weekly_trends")
    assert hive.count() == len(a)
    files = glob.glob(os.path.join(warehouse, "bondlake.db", "weekly_trends", "week_ending=*", "*"))
    files = [f for f in files if not os.path.basename(f).startswith((".", "_"))]
    assert len({os.path.dirname(f) for f in files}) == 16
    read = sum(orc.ORCFile(f).nrows for f in files)
    assert read == len(a)
    assert {orc.ORCFile(f).compression for f in files} == {"ZSTD"}
    sample = orc.read_table(files[0]).to_pylist()[0]
    assert set(sample) >= {"source", "series", "value", "zscore_13w"}


def test_a_later_file_rebuilds_only_its_weeks_partitions_in_both_engines(spark_session, lakes, workdir, warehouse):
    rust, spark = lakes
    before = orc_files(warehouse)
    assert len(before) == 16, "the first test ran the job"
    later = datetime.datetime(2026, 5, 1, 18, tzinfo=datetime.timezone.utc)
    write(rust, "weekly/QUANDL/FRED-X/2026-05-01.csv", ["US10Y"], [(friday(14), ["7.77"])], later)
    process(rust)
    # The same processed input in both lakes (processing it twice would give two inputs).
    for folder in ("processed/weekly_series", "manifests/weekly_series"):
        shutil.copytree(os.path.join(rust, folder), os.path.join(spark, folder), dirs_exist_ok=True)
    rust_key, spark_key = run_both(spark_session, rust, spark, workdir)
    assert spark_key == rust_key
    m = manifest(spark, spark_key)
    assert m == manifest(rust, rust_key)
    assert sorted(m["checksums"]) == [friday(14), friday(15)]
    after = orc_files(warehouse)
    changed = sorted(p for p in after if after[p] != before.get(p))
    assert changed == ["week_ending=%s" % friday(14), "week_ending=%s" % friday(15)], changed
    rebuilt = trends(spark, spark_key)
    assert len(rebuilt) == 2 * 10, "two whole weeks of the ten series"
    assert rebuilt == trends(rust, rust_key)
    hive = {(r["series"], r["dataset_code"], str(r["week_ending"])): r for r in
            spark_session.sql("SELECT * FROM bondlake.weekly_trends WHERE week_ending >= '%s'" % friday(14)).collect()}
    assert str(hive[("US10Y", "FRED-X", friday(14))]["value"]) == "7.770000"


def test_the_scheduled_step_runs_to_its_result(lakes, server, bundle, workdir):
    """The weekly step's own script, as `bondlake emr-step` prints it for a scheduled run's
    request: the aws CLI fetches the bundle, tar unpacks it, spark-submit runs the driver, which
    reads the request, writes the trends and the Hive table, and the result last. What only EMR
    has is replaced: YARN by local[2], EMRFS's s3:// by the bucket's folder (s3-server serves it),
    Glue's metastore by Derby in the work folder."""
    import subprocess
    import sys

    rust, _ = lakes
    bucket = "processed-weekly"
    folder = server.bucket(bucket)
    for sub in ("manifests/weekly_series", "processed/weekly_series"):
        shutil.copytree(os.path.join(rust, sub), os.path.join(folder, sub))
    artifacts = os.path.join(server.bucket("artifacts"), "bondlake")
    os.makedirs(artifacts, exist_ok=True)
    shutil.copy(bundle, os.path.join(artifacts, "bondlake-emr.tar.gz"))
    request = {
        "weekly_version": 1, "processed_bucket": bucket, "scheduled": "2026-04-18T11:00:00Z",
        "database": "scheduled", "requested_at": "2026-04-18T11:00:02Z",
    }
    os.makedirs(os.path.join(folder, "weeklies"), exist_ok=True)
    with open(os.path.join(folder, "weeklies", "0a1b2c.json"), "w") as f:
        json.dump(request, f)
    name = "bondlake-0a1b2c-a1-%d" % os.getpid()
    script = harness.step_script(server, "s3://%s/weeklies/0a1b2c.json" % bucket, "s3://artifacts/bondlake/", name)
    here = os.path.join(workdir, "scheduled-step")
    os.makedirs(here, exist_ok=True)
    for emr_only, local in [
        ("--master yarn --deploy-mode client", "--master local[2] --conf spark.ui.enabled=false "
         "--conf spark.sql.warehouse.dir=%s/warehouse" % here),
        ("--processed 's3://%s'" % bucket, "--processed 'file://%s'" % folder),
    ]:
        assert emr_only in script, script
        script = script.replace(emr_only, local)
    env = server.env()
    env["AWS_ENDPOINT_URL_S3"] = server.endpoint
    env["PATH"] = os.pathsep.join([os.path.dirname(harness.aws_cli()), os.path.dirname(harness.spark_submit()), env["PATH"]])
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        ran = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=here)
    finally:
        shutil.rmtree(os.path.join("/mnt/tmp", name), ignore_errors=True)
    assert ran.returncode == 0, ran.stdout[-5000:] + ran.stderr[-5000:]
    with open(os.path.join(folder, "weeklies", "0a1b2c.result.json")) as f:
        result = json.load(f)
    assert result["weekly_id"] == "0a1b2c"
    assert (result["series"], result["weeks"], result["rows"]) == (10, 16, 7 * 16 + 15 + 2 * 16), result
    assert os.path.isfile(os.path.join(folder, result["manifest"]))
    parts = glob.glob(os.path.join(here, "warehouse", "scheduled.db", "weekly_trends", "week_ending=*"))
    assert len(parts) == 16, parts
