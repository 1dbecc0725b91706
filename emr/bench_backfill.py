"""The backfill of some generated days, through the launcher's local backend (`bondlake backfill
run`: one object after another, every core on each) and through the Spark driver (local[N]: N
objects at once, one core each), side by side in one run, against the S3-protocol server.

    python emr/bench_backfill.py --days 5 --rows 20000

Prints the records read per second of each. The binary is $BONDLAKE_BIN or the release build.
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
import time

import harness


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=5)
    p.add_argument("--rows", type=int, default=20000, help="records per file (six files a day)")
    p.add_argument("--master", default="local[2]")
    p.add_argument("--keep", action="store_true", help="keep the folder (its path is printed)")
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="bondlake-bench-backfill-")
    server = harness.S3Server(os.path.join(work, "s3"), [harness.RAW])
    try:
        days = [f"2026-10-{d:02d}" for d in range(1, a.days + 1)]
        started = time.time()
        for n, day in enumerate(days):
            harness.day_of_files(server, day, rows=a.rows, seed=n + 1)
        raw_bytes = sum(
            os.path.getsize(os.path.join(d, f))
            for d, _, fs in os.walk(server.bucket(harness.RAW))
            for f in fs
        )
        print(f"{a.days} days, {6 * a.days} objects, {raw_bytes / 1e6:.1f} MB generated in {time.time() - started:.1f} s")
        bundle = harness.bundle(os.path.join(work, "bondlake-emr.tar.gz"))

        results = []
        location = harness.request(server, "processed-local")
        started = time.time()
        done = harness.local_backfill(server, location)
        seconds = time.time() - started
        if done.returncode != 0:
            sys.exit(done.stderr)
        results.append(("local backend (bondlake backfill run)", harness.rows_read(server, "processed-local"), seconds))

        location = harness.request(server, "processed-spark")
        started = time.time()
        ran = harness.spark_backfill(server, location, bundle, work, master=a.master)
        seconds = time.time() - started
        if ran.returncode != 0:
            sys.exit(ran.stderr[-5000:])
        spark_rows = harness.rows_read(server, "processed-spark")
        results.append((f"Spark driver ({a.master}, spark-submit)", spark_rows, seconds))
        found = re.search(r"objects run on the executors in ([0-9.]+) s", ran.stdout + ran.stderr)
        if found:
            results.append(("  of which the executors' part", spark_rows, float(found.group(1))))

        print(f"{'backend':42} {'records':>10} {'seconds':>8} {'records/s':>10}")
        for name, rows, seconds in results:
            print(f"{name:42} {rows:>10} {seconds:>8.1f} {rows / seconds:>10.0f}")
        print("(the whole Spark run includes its JVM's start and the plan, as a step on EMR does)")
    finally:
        server.stop()
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
