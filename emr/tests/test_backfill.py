"""The EMR backfill driver under local Spark (local[2]) against the S3-protocol server: it runs
every selected object with the bundle's binary on the executors and writes what the launcher's
local backend writes, and a rerun converges on the same keys."""

import json
import os

import harness

DAYS = ["2026-11-23", "2026-11-24"]


def test_the_spark_driver_writes_what_the_local_backend_writes(server, bundle, workdir):
    keys = []
    for n, day in enumerate(DAYS):
        keys += harness.day_of_files(server, day, rows=400, seed=n + 1)
    # An object under the prefix that no route takes, and a file that is not CSV at all: the
    # first is left out of the plan, the second gets a failed manifest in both runs.
    with open(os.path.join(server.bucket(harness.RAW), "notes.txt"), "w") as f:
        f.write("not routed")
    with open(os.path.join(server.bucket(harness.RAW), "holdings", "custodian_a", "broken.csv.gz"), "wb") as f:
        f.write(b"\x1f\x8b\x08\x00truncated")

    local = harness.request(server, "processed-local")
    done = harness.local_backfill(server, local)
    assert done.returncode == 0, done.stderr
    spark = harness.request(server, "processed-spark")
    assert os.path.basename(spark) == os.path.basename(local), "the same selection is the same backfill"
    ran = harness.spark_backfill(server, spark, bundle, workdir)
    assert ran.returncode == 0, ran.stdout[-5000:] + ran.stderr[-5000:]

    a, b = harness.outputs(server, "processed-local"), harness.outputs(server, "processed-spark")
    manifests = [k for k in a if k.startswith("manifests/")]
    assert len(manifests) == len(keys) + 1, manifests
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key] == b[key], key
    [result] = [v for k, v in b.items() if k.startswith("backfills/")]
    assert result["objects"] == len(keys) + 1 and result["ran"] == result["objects"], result
    assert [p["key"] for p in result["problems"]] == ["holdings/custodian_a/broken.csv.gz"], result
    assert result["rows_read"] == harness.rows_read(server, "processed-spark")


def test_a_rerun_writes_the_same_keys_and_nothing_else(server, bundle, workdir):
    location = harness.request(server, "processed-spark")
    before = harness.outputs(server, "processed-spark")
    assert before, "the first test ran the backfill"
    ran = harness.spark_backfill(server, location, bundle, workdir)
    assert ran.returncode == 0, ran.stderr[-5000:]
    after = harness.outputs(server, "processed-spark")
    assert sorted(after) == sorted(before)
    assert after == before


def test_a_selection_by_day_and_dataset_runs_only_those_objects(server, bundle, workdir):
    # Every raw object was written today: a window in the past selects nothing, and the step
    # still writes its result (an empty backfill is done, not stuck).
    location = harness.request(server, "processed-empty", **{"from": "2020-01-01", "to": "2020-01-31"})
    ran = harness.spark_backfill(server, location, bundle, workdir)
    assert ran.returncode == 0, ran.stderr[-5000:]
    result = [v for k, v in harness.outputs(server, "processed-empty").items() if k.startswith("backfills/")]
    assert [r["objects"] for r in result] == [0]
    plan = harness.run(
        ["backfill", "plan", "--request", harness.request(server, "processed-empty", dataset="weekly_series"),
         "--endpoint-url", server.endpoint],
        env=server.env(),
    )
    planned = [json.loads(line) for line in plan.stdout.splitlines()]
    assert len(planned) == len(DAYS) and all(p["dataset"] == "weekly_series" for p in planned), planned


def test_the_step_the_launcher_submits_runs_its_script_to_the_end(server, bundle, workdir):
    """The backfill step's own script, as `bondlake emr-step` prints it: the aws CLI fetches the
    bundle from the artifacts bucket, tar unpacks it on the "primary node", spark-submit runs the
    driver. Two things only EMR has are replaced: YARN by local[2], and the bundle's s3:// URL
    for --archives (EMRFS) by the same file on disk."""
    import shutil
    import subprocess
    import sys

    artifacts = os.path.join(server.bucket("artifacts"), "bondlake")
    os.makedirs(artifacts, exist_ok=True)
    shutil.copy(bundle, os.path.join(artifacts, "bondlake-emr.tar.gz"))
    location = harness.request(server, "processed-step", dataset="market_daily")
    name = "bondlake-test-%d-a1" % os.getpid()
    script = harness.step_script(server, location, "s3://artifacts/bondlake/", name)
    for emr_only, here in [
        ("--master yarn --deploy-mode client", "--master local[2]"),
        ("--archives s3://artifacts/bondlake/bondlake-emr.tar.gz#bondlake", f"--archives {bundle}#bondlake"),
    ]:
        assert emr_only in script, script
        script = script.replace(emr_only, here)
    env = server.env()
    env["AWS_ENDPOINT_URL_S3"] = server.endpoint
    env["S3_FORCE_PATH_STYLE"] = "true"
    env["PATH"] = os.pathsep.join([os.path.dirname(harness.aws_cli()), os.path.dirname(harness.spark_submit()), env["PATH"]])
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        ran = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=workdir)
    finally:
        shutil.rmtree(os.path.join("/mnt/tmp", name), ignore_errors=True)
    assert ran.returncode == 0, ran.stdout[-5000:] + ran.stderr[-5000:]
    out = harness.outputs(server, "processed-step")
    [result] = [v for k, v in out.items() if k.startswith("backfills/")]
    manifests = [k for k in out if k.startswith("manifests/market_daily/")]
    assert result["objects"] == result["ran"] == len(manifests) == 3 * len(DAYS), result
