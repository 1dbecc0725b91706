"""The weekly job on EMR: the trend features of every weekly series over its whole history
(docs/datasets.md, "Weekly trend features"), as `bondlake weekly` computes them
(shared/bondlake-core/src/weekly), row for row:

1. History: every `ok` manifest under manifests/weekly_series/ and its Parquet parts; where several
   files carry a key, the greatest (_source_order, _ingested_at, _source_key, _record_number) wins.
2. Features per series, in Python integers (values scaled by 10^6): exact, rounded half away from
   zero, the z-score as (n*x - S) / sqrt(n*Q - S^2) with one rounding of each part to a float.
3. Weeks rebuilt: state/weekly_trends.json holds the inputs of the last run and of the one before;
   the weeks a new input carries and the 12 after each are rebuilt, every week when an input is
   gone or was processed again.
4. Output: the rebuilt weeks' rows as Parquet parts and a manifest in the processed bucket's layout
   (the keys `bondlake weekly` would write, so the loader cannot tell the engines apart), the
   state, and the Hive table `<database>.weekly_trends`, STORED AS ORC (zstd), partitioned by
   week_ending, whose rebuilt weeks' partitions alone are overwritten.

    spark-submit weekly_trends.py --processed s3://<processed-bucket> --contracts <dir> \
        [--database bondlake --database-location s3://<processed-bucket>/hive/bondlake.db]

As the EMR launcher submits it, for the weekly schedule's run (shared/bondlake-core/src/weekly/
request.rs), the database comes from the run's request, and the run's result is written last:

    spark-submit weekly_trends.py --processed s3://<processed-bucket> \
        --request weeklies/<id>.json --contracts <dir>

The Python on EMR 7 is 3.9: nothing here needs a library Spark does not bring.
"""

import argparse
import calendar
import datetime
import decimal
import hashlib
import json
import math
import re
import sys
import zlib

TRENDS = "weekly_trends"
SERIES = "weekly_series"
STATE_KEY = "state/weekly_trends.json"
REACH = 12
LIMIT = 999_999_999_999_999_999
UNIT = 10**6
EPOCH = datetime.date(1970, 1, 1)
TOTALS = ["value", "wow_change", "wow_pct", "ma_4w", "ma_13w"]
# The session the job needs: instants in UTC, Parquet as the loader reads it (microsecond
# instants, zstd), and an overwrite that replaces only the partitions written.
SESSION = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.compression.codec": "zstd",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "hive.exec.dynamic.partition.mode": "nonstrict",
}
COLUMNS = [
    "source", "dataset_code", "series", "week_ending", "value", "wow_change", "wow_pct", "ma_4w",
    "ma_13w", "zscore_13w", "_source_key", "_record_number", "_ingested_at", "_source_order",
]


# --- the definitions, exact (shared/bondlake-core/src/weekly/features.rs) ---------------------

def div_round(n, d):
    """n / d rounded half away from zero (d > 0)."""
    return (2 * n + d) // (2 * d) if n >= 0 else -((-2 * n + d) // (2 * d))


def fits(v):
    return v if abs(v) <= LIMIT else None


def window(weeks, i, k):
    """The values of the k consecutive calendar weeks ending at weeks[i], if each has one."""
    first = i - (k - 1)
    if first < 0:
        return None
    end = weeks[i][0]
    out = []
    for n, (week, value) in enumerate(weeks[first:i + 1]):
        if week != end - 7 * (k - 1 - n) or value is None:
            return None
        out.append(value)
    return out


def zscore(w):
    n = len(w)
    s = sum(w)
    numerator = n * w[-1] - s
    variance = n * sum(x * x for x in w) - s * s
    return numerator / math.sqrt(variance) if variance > 0 else None


def features(weeks):
    """[(wow_change, wow_pct, ma_4w, ma_13w, zscore_13w)] for weeks [(day, value or None)]."""
    out = []
    for i in range(len(weeks)):
        pair = window(weeks, i, 2)
        wow_change = fits(pair[1] - pair[0]) if pair else None
        wow_pct = fits(div_round((pair[1] - pair[0]) * 100 * UNIT, abs(pair[0]))) if pair and pair[0] != 0 else None
        w4, w13 = window(weeks, i, 4), window(weeks, i, 13)
        out.append((
            wow_change,
            wow_pct,
            div_round(sum(w4), 4) if w4 else None,
            div_round(sum(w13), 13) if w13 else None,
            zscore(w13) if w13 else None,
        ))
    return out


def decimal_text(v):
    """A scaled value as decimal(18,6) text: `-1.500000`, `\\N` for null."""
    if v is None:
        return "\\N"
    sign = "-" if v < 0 else ""
    whole, frac = divmod(abs(v), UNIT)
    return "%s%d.%06d" % (sign, whole, frac)


def row_checksum(source, code, series, week, decimals):
    """CRC-32 of the row's canonical text (shared/bondlake-core/src/weekly: row_checksum)."""
    fields = [source, code, series, day_text(week)] + [decimal_text(d) for d in decimals]
    return zlib.crc32("|".join(fields).encode("utf-8"))


def day_text(day):
    return (EPOCH + datetime.timedelta(days=day)).isoformat()


def rank(o):
    """The order in which inputs win a key (an unknown _source_order is earliest)."""
    order = o["order"]
    return (order is not None, (order or "").encode("utf-8"), o["ingested_us"], o["source_key"].encode("utf-8"), o["record"])


def output_base(bucket, version, digest):
    """`weekly_trends-<16 hex>`: OutputNames::new(TRENDS, version, week_ending, bucket, TRENDS, digest)."""
    h = hashlib.sha256()
    for part in (bucket, TRENDS, digest, TRENDS, version):
        h.update(part.encode("utf-8") + b"\0")
    return "%s-%s" % (TRENDS, h.hexdigest()[:16])


def weeks_to_rebuild(series, inputs, carried, before):
    """As History::weeks_to_rebuild."""
    everything = {w for weeks in series.values() for w in weeks}
    if before is None:
        return everything
    now = set(inputs)
    if any(i not in now for i in before):
        return everything
    old = set(before)
    weeks = set()
    for n, name in enumerate(inputs):
        if name in old:
            continue
        for key, week in carried[n]:
            for w in series.get(key, {}):
                if week <= w <= week + 7 * REACH:
                    weeks.add(w)
    return weeks


# --- storage through Hadoop's FileSystem (s3:// on EMR, file:// in tests) ----------------------

class Store:
    def __init__(self, spark, root):
        self.jvm = spark._jvm
        self.root = root.rstrip("/")
        conf = spark._jsc.hadoopConfiguration()
        self.fs = self.jvm.org.apache.hadoop.fs.Path(self.root).getFileSystem(conf)

    def path(self, key):
        return self.jvm.org.apache.hadoop.fs.Path(self.root + "/" + key)

    def url(self, key):
        return self.root + "/" + key

    def read(self, key):
        p = self.path(key)
        if not self.fs.exists(p):
            return None
        stream = self.fs.open(p)
        try:
            return bytes(self.jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()

    def write(self, key, data):
        stream = self.fs.create(self.path(key), True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()

    def list(self, prefix):
        p = self.path(prefix)
        if not self.fs.exists(p):
            return []
        return sorted(prefix + s.getPath().getName() for s in self.fs.listStatus(p) if s.isFile())

    def move(self, src_url, key):
        dest = self.path(key)
        self.fs.mkdirs(dest.getParent())
        self.fs.delete(dest, False)
        if not self.fs.rename(self.jvm.org.apache.hadoop.fs.Path(src_url), dest):
            raise RuntimeError("could not move %s to %s" % (src_url, self.url(key)))
        return self.fs.getFileStatus(dest).getLen()

    def delete(self, url):
        self.fs.delete(self.jvm.org.apache.hadoop.fs.Path(url), True)


def contract_version(contracts):
    """The weekly_trends contract's version, from its file (no TOML reader in Python 3.9)."""
    with open(contracts.rstrip("/") + "/%s.toml" % TRENDS) as f:
        found = re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.M)
    if not found:
        raise RuntimeError("%s/%s.toml has no version" % (contracts, TRENDS))
    return found.group(1)


def now_rfc3339():
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- the job ------------------------------------------------------------------------------------

def read_history(spark, store):
    """(series → {week: observation}, inputs, carried per input, rows read)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    inputs, parts = [], []
    for key in store.list("manifests/%s/" % SERIES):
        if not key.endswith(".json"):
            continue
        m = json.loads(store.read(key))
        if m.get("status") != "ok" or m.get("dataset") != SERIES:
            continue
        for o in m["outputs"]:
            parts.append((o["key"], len(inputs)))
        inputs.append("%s@%s" % (key, m["finished_at"]))
    if not parts:
        return {}, inputs, [set() for _ in inputs], 0
    schema = T.StructType([
        T.StructField("source", T.StringType()),
        T.StructField("dataset_code", T.StringType()),
        T.StructField("series", T.StringType()),
        T.StructField("week_ending", T.DateType()),
        T.StructField("value", T.DecimalType(18, 6)),
        T.StructField("_source_key", T.StringType()),
        T.StructField("_record_number", T.LongType()),
        T.StructField("_ingested_at", T.TimestampType()),
        T.StructField("_source_order", T.StringType()),
    ])
    input_of = spark.createDataFrame(parts, ["part", "input"])
    rows = (
        spark.read.schema(schema).parquet(*[store.url(k) for k, _ in parts])
        # Each row's part by its key, whatever form of URL the reader gives the file.
        .withColumn("part", F.regexp_extract(F.input_file_name(), r"(processed/%s/.+)$" % SERIES, 1))
        .withColumn("ingested_us", F.unix_micros("_ingested_at"))
        .join(F.broadcast(input_of), "part")
    )
    series, carried, read = {}, [set() for _ in inputs], 0
    for r in rows.toLocalIterator():
        read += 1
        key = (r["source"], r["dataset_code"], r["series"])
        week = (r["week_ending"] - EPOCH).days
        o = {
            "value": int(r["value"].scaleb(6)) if r["value"] is not None else None,
            "source_key": r["_source_key"],
            "record": r["_record_number"],
            "ingested_us": r["ingested_us"],
            "order": r["_source_order"],
            "input": r["input"],
        }
        carried[r["input"]].add((key, week))
        held = series.setdefault(key, {}).get(week)
        if held is None or rank(o) > rank(held):
            series[key][week] = o
    return series, inputs, carried, read


def trend_rows(sc, series):
    """Every series' trend rows, the features computed on the executors, series by series."""
    def compute(item):
        key, weeks = item
        ordered = sorted(weeks.items())
        first = 0
        for i, ((week, o), f) in enumerate(zip(ordered, features([(w, o["value"]) for w, o in ordered]))):
            # The row's lineage: the newest input it read, over the weeks its features read.
            while ordered[first][0] < week - 7 * REACH:
                first += 1
            lineage = max((p for _, p in ordered[first:i + 1]), key=rank)
            yield (key, week, o, lineage, f)

    items = sorted(series.items())
    slices = max(1, min(len(items), sc.defaultParallelism * 4))
    return sc.parallelize(items, slices).flatMap(compute).collect()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--processed", required=True, help="the processed bucket: s3://bucket or file:///path")
    p.add_argument("--bucket", help="the processed bucket's name in the output keys (default: from --processed)")
    p.add_argument("--contracts", required=True, help="the contracts folder (the bundle's)")
    p.add_argument("--database", default="bondlake", help="the Hive database of the ORC table")
    p.add_argument("--database-location", help="where a new database keeps its tables (s3://...)")
    p.add_argument("--request", help="a scheduled run's request in the processed bucket (weeklies/<id>.json): "
                   "its database, and weeklies/<id>.result.json written last")
    a = p.parse_args(argv)

    from pyspark.sql import SparkSession
    from pyspark.sql import types as T

    builder = SparkSession.builder.appName("bondlake-weekly-trends")
    for k, v in SESSION.items():
        builder = builder.config(k, v)
    spark = builder.enableHiveSupport().getOrCreate()
    try:
        return run(spark, a, T)
    finally:
        spark.stop()


def run(spark, a, T):
    started = now_rfc3339()
    store = Store(spark, a.processed)
    request = getattr(a, "request", None)
    if request:
        raw = store.read(request)
        if raw is None:
            raise RuntimeError("%s: the request is missing" % store.url(request))
        asked = json.loads(raw)
        a.database = asked["database"]
        a.database_location = asked.get("database_location") or None
    bucket = a.bucket or re.sub(r"^[a-z0-9]+://", "", a.processed).strip("/").split("/")[-1]
    version = contract_version(a.contracts)
    series, inputs, carried, read = read_history(spark, store)
    if not inputs:
        print("weekly: no processed weekly_series data: nothing to compute", file=sys.stderr)
        finish(store, request, None, 0, 0, 0)
        return 0
    raw_state = store.read(STATE_KEY)
    state = json.loads(raw_state) if raw_state else None
    if state is None:
        before = None
    elif state["inputs"] == inputs:
        before = state.get("previous")
    else:
        before = state["inputs"]
    weeks = weeks_to_rebuild(series, inputs, carried, before)
    h = hashlib.sha256()
    for i in inputs:
        h.update(i.encode("utf-8") + b"\0")
    h.update(b"\1")
    for i in before or []:
        h.update(i.encode("utf-8") + b"\0")
    digest = h.hexdigest()[:32]
    base = output_base(bucket, version, digest)

    rows = trend_rows(spark.sparkContext, series)
    utc = datetime.timezone.utc
    out, totals, checksums, nulls = [], [0] * len(TOTALS), {}, 0
    for key, week, o, lineage, f in rows:
        if week not in weeks:
            continue
        decimals = [o["value"], f[0], f[1], f[2], f[3]]
        for n, d in enumerate(decimals):
            totals[n] += d or 0
        nulls += o["value"] is None
        c = checksums.setdefault(week, [0, 0])
        c[0] += 1
        c[1] += row_checksum(key[0], key[1], key[2], week, decimals)
        dec = [decimal.Decimal(d).scaleb(-6) if d is not None else None for d in decimals]
        us = lineage["ingested_us"]
        out.append((
            key[0], key[1], key[2], EPOCH + datetime.timedelta(days=week), dec[0], dec[1], dec[2], dec[3], dec[4],
            f[4], lineage["source_key"], lineage["record"],
            datetime.datetime(1970, 1, 1, tzinfo=utc) + datetime.timedelta(microseconds=us),
            lineage["order"],
        ))
    schema = T.StructType([
        T.StructField("source", T.StringType(), False),
        T.StructField("dataset_code", T.StringType(), False),
        T.StructField("series", T.StringType(), False),
        T.StructField("week_ending", T.DateType(), False),
    ] + [T.StructField(n, T.DecimalType(18, 6), True) for n in TOTALS] + [
        T.StructField("zscore_13w", T.DoubleType(), True),
        T.StructField("_source_key", T.StringType(), False),
        T.StructField("_record_number", T.LongType(), False),
        T.StructField("_ingested_at", T.TimestampType(), False),
        T.StructField("_source_order", T.StringType(), True),
    ])
    df = spark.createDataFrame(out, schema)

    # Parquet: one part per week, under the keys bondlake weekly writes.
    from pyspark.sql import functions as F
    scratch = store.url("tmp/%s-%s" % (base, started.replace(":", "")))
    (df.withColumn("_part", F.date_format("week_ending", "yyyy-MM-dd"))
       .repartition("_part").sortWithinPartitions("source", "dataset_code", "series")
       .write.mode("overwrite").partitionBy("_part").parquet(scratch))
    outputs = []
    for week in sorted(weeks):
        day = day_text(week)
        folder = "%s/_part=%s" % (scratch, day)
        files = [s.getPath().toString() for s in store.fs.listStatus(store.jvm.org.apache.hadoop.fs.Path(folder))
                 if s.getPath().getName().endswith(".parquet")]
        if len(files) != 1:
            raise RuntimeError("week %s was written as %d files, not one" % (day, len(files)))
        key = "processed/%s/week_ending=%s/%s-0000.parquet" % (TRENDS, day, base)
        size = store.move(files[0], key)
        outputs.append({"key": key, "rows": checksums[week][0], "bytes": size, "partition": {"week_ending": day}})
    store.delete(scratch)
    outputs.sort(key=lambda o: o["key"])

    # The Hive table: the rebuilt weeks' partitions overwritten, the others left as they are.
    location = " LOCATION '%s'" % a.database_location if a.database_location else ""
    spark.sql("CREATE DATABASE IF NOT EXISTS `%s`%s" % (a.database, location))
    table = "`%s`.`%s`" % (a.database, TRENDS)
    spark.sql(
        "CREATE TABLE IF NOT EXISTS %s (source STRING, dataset_code STRING, series STRING, "
        "value DECIMAL(18,6), wow_change DECIMAL(18,6), wow_pct DECIMAL(18,6), ma_4w DECIMAL(18,6), "
        "ma_13w DECIMAL(18,6), zscore_13w DOUBLE, _source_key STRING, _record_number BIGINT, "
        "_ingested_at TIMESTAMP, _source_order STRING) PARTITIONED BY (week_ending DATE) "
        "STORED AS ORC TBLPROPERTIES ('orc.compress'='ZSTD')" % table
    )
    hive_columns = [c for c in COLUMNS if c != "week_ending"] + ["week_ending"]
    df.select(*hive_columns).write.insertInto(table, overwrite=True)

    manifest_key = "manifests/%s/%s.json" % (TRENDS, base)
    manifest = {
        "manifest_version": 1,
        "dataset": TRENDS,
        "contract_version": version,
        "profile": "",
        "source": {"bucket": bucket, "key": "manifests/%s/" % SERIES, "etag": digest, "bytes": 0},
        "rows_read": len(rows),
        "rows_ok": len(rows),
        "rows_rejected": 0,
        "rows_written": len(out),
        "reject_reasons": {},
        "outputs": outputs,
        "quarantine": None,
        "control_totals": {n: decimal_text(t) for n, t in zip(TOTALS, totals)},
        "null_values": nulls,
        "unknown_columns": [],
        "columns": COLUMNS,
        "series": len(series),
        "inputs": inputs,
        "checksums": {day_text(w): "%d:%d" % (c[0], c[1]) for w, c in sorted(checksums.items())},
        "started_at": started,
        "finished_at": now_rfc3339(),
        "status": "ok",
        "error": None,
    }
    store.write(manifest_key, json.dumps(manifest, indent=2).encode("utf-8"))
    state = {"inputs": inputs, "previous": before, "manifest": manifest_key, "finished_at": manifest["finished_at"]}
    store.write(STATE_KEY, json.dumps(state, indent=2).encode("utf-8"))
    finish(store, request, manifest_key, len(series), len(weeks), len(out))
    print(
        "weekly: %d series, %d rows of history, %d weeks rebuilt, %d rows written; manifest %s; Hive %s"
        % (len(series), len(rows), len(weeks), len(out), store.url(manifest_key), table),
        file=sys.stderr,
    )
    return 0


def finish(store, request, manifest_key, series, weeks, rows):
    """A scheduled run's result, written last (WeeklyResult in weekly/request.rs): its S3
    notification starts the export."""
    if not request:
        return
    base = request[: -len(".json")] if request.endswith(".json") else request
    result = {
        "weekly_id": base.rsplit("/", 1)[-1],
        "manifest": manifest_key,
        "series": series,
        "weeks": weeks,
        "rows": rows,
        "finished_at": now_rfc3339(),
    }
    store.write(base + ".result.json", json.dumps(result, indent=2).encode("utf-8"))


if __name__ == "__main__":
    sys.exit(main())
