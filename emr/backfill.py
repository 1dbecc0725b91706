"""The EMR backfill's driver: spreads a backfill's raw objects over the cluster's executors, each
object run by the same `bondlake` binary the Lambda functions are built from.

emr-launcher submits it as one step (`bondlake_emr::StepCommand`):

    spark-submit --archives s3://<artifacts>/bondlake/bondlake-emr.tar.gz#bondlake \
        backfill.py --request s3://<processed>/backfills/<id>.json --bondlake-dir <unpacked bundle>

1. On the driver, `bondlake backfill plan` lists the raw objects the request selects.
2. Spark runs one task per object, biggest first, on whichever executor is free: the task runs
   `bondlake backfill object` from the bundle YARN unpacked into its folder, which writes the
   object's parts, quarantine and manifest under the keys a Lambda run gives, and publishes its
   `processed` event. A retryable failure (throttling, a dropped connection) is tried again twice.
3. On the driver, `bondlake backfill finish` writes the backfill's result from the outcomes; the
   step fails (and the launcher tells the team) when an object did not run to the end.

Nothing here knows a rule: the engine is the binary. What it prints on stderr, spark-submit shows
on its stdout (PySpark merges the driver's two streams): the step's `stdout` log on EMR. The bundle holds `bondlake`, the
`libduckdb.so` it links, `contracts/` and this file (`tools/emr-bundle.sh`).
"""

import argparse
import json
import os
import subprocess
import sys
import time

# The name YARN (or local mode) unpacks the bundle under, on every executor: `--archives ...#bondlake`.
BUNDLE_LINK = "bondlake"
# How many times an object whose failure may pass is run again.
RETRIES = 2
# The end of a failed command's stderr kept in its outcome.
STDERR_TAIL = 4000


def options(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--request", required=True, help="s3://processed-bucket/backfills/<id>.json")
    p.add_argument(
        "--bondlake-dir",
        required=True,
        help="the unpacked bundle on the driver (the step's working folder)",
    )
    p.add_argument("--events-topic-arn", default="stdout", help="the pipeline-events topic")
    p.add_argument("--endpoint-url", help="an S3-protocol endpoint instead of AWS (tests)")
    return p.parse_args(argv)


def bondlake(folder, args, stdin=None):
    """Runs the bundle's binary in `folder` with the library it links."""
    library_path = os.environ.get("LD_LIBRARY_PATH", "")
    env = dict(os.environ, LD_LIBRARY_PATH=folder + (":" + library_path if library_path else ""))
    return subprocess.run(
        [os.path.join(folder, "bondlake"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def common(opts, folder):
    """The arguments every step of the backfill takes, with the bundle in `folder`."""
    args = [
        "--request",
        opts["request"],
        "--contracts",
        os.path.join(folder, "contracts"),
        "--events-topic-arn",
        opts["events_topic_arn"],
    ]
    if opts.get("endpoint_url"):
        args += ["--endpoint-url", opts["endpoint_url"]]
    return args


def executor_bundle():
    """Where the bundle was unpacked for this executor: YARN puts `--archives` in the
    container's folder; local mode under SparkFiles' root."""
    from pyspark import SparkFiles

    for folder in (
        os.path.join(SparkFiles.getRootDirectory(), BUNDLE_LINK),
        os.path.abspath(BUNDLE_LINK),
    ):
        if os.path.isfile(os.path.join(folder, "bondlake")):
            return folder
    raise RuntimeError(
        "the bondlake bundle is not on this executor: submit with --archives <bundle>#bondlake"
    )


def run_objects(objects, opts, threads):
    """Runs each planned object with the binary; yields each outcome as a JSON line."""
    folder = executor_bundle()
    args = ["backfill", "object", *common(opts, folder), "--threads", str(threads)]
    for planned in objects:
        for attempt in range(RETRIES + 1):
            done = bondlake(folder, [*args, "--object", json.dumps(planned)])
            lines = done.stdout.strip().splitlines()
            if done.returncode == 0 and lines:
                outcome = json.loads(lines[-1])
            else:
                outcome = {
                    "key": planned["key"],
                    "outcome": "error",
                    "error": "bondlake backfill object exited %d: %s"
                    % (done.returncode, done.stderr.strip()[-STDERR_TAIL:]),
                    "retryable": False,
                }
            if outcome["outcome"] != "error" or not outcome.get("retryable"):
                break
            time.sleep(2**attempt)
        yield json.dumps(outcome)


def main(argv=None):
    from pyspark.sql import SparkSession

    opts = vars(options(argv))
    driver = opts["bondlake_dir"]
    spark = SparkSession.builder.appName("bondlake-backfill").getOrCreate()
    sc = spark.sparkContext
    try:
        plan = bondlake(driver, ["backfill", "plan", *common(opts, driver)])
        sys.stderr.write(plan.stderr)
        if plan.returncode != 0:
            return plan.returncode
        objects = [json.loads(line) for line in plan.stdout.splitlines() if line.strip()]
        # Biggest first: they start early, so they do not end long after the rest.
        objects.sort(key=lambda o: (-o["bytes"], o["key"]))
        threads = int(sc.getConf().get("spark.task.cpus", "1"))
        outcomes = []
        started = time.time()
        if objects:
            outcomes = (
                sc.parallelize(objects, len(objects))
                .mapPartitions(lambda part: run_objects(part, opts, threads))
                .collect()
            )
        sys.stderr.write(
            "bondlake backfill: %d objects run on the executors in %.1f s\n"
            % (len(objects), time.time() - started)
        )
        finish = bondlake(
            driver, ["backfill", "finish", *common(opts, driver)], stdin="\n".join(outcomes) + "\n"
        )
        sys.stderr.write(finish.stderr)
        return finish.returncode
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
