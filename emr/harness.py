"""What the EMR tests and the backfill benchmark share: a `bondlake s3-server` in a folder,
generated vendor files in its raw bucket, the bundle EMR runs, and the two ways to run a backfill
(the launcher's local backend, `bondlake backfill run`, and the Spark driver under spark-submit).

The binary is `$BONDLAKE_BIN`, else `$CARGO_TARGET_DIR/release/bondlake` (CI builds it first).
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACCESS_KEY = "bondlake"
SECRET_KEY = "bondlake-local-secret"
RAW = "raw"


def binary():
    """The release `bondlake` the tests run."""
    path = os.environ.get("BONDLAKE_BIN") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "bondlake"
    )
    if not os.path.isfile(path):
        raise RuntimeError(f"{path} is missing: build it (cargo build --release -p bondlake-cli) or set BONDLAKE_BIN")
    return path


def run(args, stdin=None, env=None, check=True):
    """Runs `bondlake args`; its stderr is shown when it fails."""
    done = subprocess.run(
        [binary(), *args], input=stdin, capture_output=True, text=True, env=env, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"bondlake {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


class S3Server:
    """`bondlake s3-server` serving `folder` on a free loopback port, until `stop`."""

    def __init__(self, folder, buckets):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        args = [binary(), "s3-server", "--root", folder, "--addr", "127.0.0.1:0"]
        for b in buckets:
            args += ["--bucket", b]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.process.stdout.readline()
        found = re.search(r"at (http://127\.0\.0\.1:\d+)", line)
        if not found:
            self.stop()
            raise RuntimeError(f"bondlake s3-server did not start: {line}")
        self.endpoint = found.group(1)

    def env(self):
        """The environment a client of this server runs with (no AWS credentials looked up)."""
        return dict(
            os.environ,
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true",
        )

    def bucket(self, name):
        path = os.path.join(self.folder, name)
        os.makedirs(path, exist_ok=True)
        return path

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


def generate(server, key, dataset, rows, seed, profile=None, dirty=0.03):
    """Writes a generated vendor file at `key` in the raw bucket."""
    path = os.path.join(server.bucket(RAW), key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    args = ["gen", "--dataset", dataset, "--rows", str(rows), "--seed", str(seed), "--dirty", str(dirty), "--out", path]
    if profile:
        args += ["--profile", profile]
    run(args)
    return path


def day_of_files(server, day, rows, seed):
    """One business day's files: two custodians' holdings, NYSE and Nasdaq prices, a BSE bhavcopy
    and a weekly series, `rows` records each (the weekly file fewer: it is wide)."""
    ymd = day.replace("-", "")
    dd, mm, yy = ymd[6:8], ymd[4:6], ymd[2:4]
    files = [
        (f"holdings/custodian_a/holdings_{ymd}.csv.gz", "investor_holdings", None, rows),
        (f"holdings/custodian_b/holdings_{ymd}.csv.gz", "investor_holdings", None, rows),
        (f"market/NYSE/nyse_eod_{ymd}.csv.gz", "market_daily", "us", rows),
        (f"market/NASDAQ/nasdaq_eod_{ymd}.csv.gz", "market_daily", "us", rows),
        (f"market/BSE/EQ{dd}{mm}{yy}.CSV", "market_daily", "bse", rows),
        (f"weekly/FT/FT-RATES/{day}.csv.gz", "weekly_series", None, max(rows // 100, 10)),
    ]
    for n, (key, dataset, profile, count) in enumerate(files):
        generate(server, key, dataset, count, seed * 100 + n, profile)
    return [f[0] for f in files]


def bundle(out):
    """The archive EMR runs (tools/emr-bundle.sh), built from the release binary."""
    done = subprocess.run([os.path.join(ROOT, "tools", "emr-bundle.sh"), binary(), out], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"tools/emr-bundle.sh exited {done.returncode}:\n{done.stderr}")
    return out


def request(server, processed, prefix="", **selection):
    """Stores a backfill request for the raw bucket's `prefix` in `processed`; its location."""
    args = ["backfill", "request", "--raw", f"s3://{RAW}/{prefix}", "--processed", f"s3://{processed}", "--endpoint-url", server.endpoint]
    for name, value in selection.items():
        args += [f"--{name}", value]
    return run(args, env=server.env()).stdout.strip()


def local_backfill(server, location, threads=0):
    """The launcher's local backend: every object in turn on this machine."""
    args = ["backfill", "run", "--request", location, "--endpoint-url", server.endpoint]
    if threads:
        args += ["--threads", str(threads)]
    return run(args, env=server.env(), check=False)


def spark_submit():
    """spark-submit of the pyspark this interpreter has."""
    import pyspark

    return os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")


def spark_backfill(server, location, bundle_path, workdir, master="local[2]", conf=()):
    """The step as EMR runs it, with local Spark: the bundle unpacked for the driver, and given to
    the executors with --archives."""
    driver = os.path.join(workdir, "driver")
    shutil.rmtree(driver, ignore_errors=True)
    os.makedirs(driver)
    subprocess.run(["tar", "-xzf", bundle_path, "-C", driver], check=True)
    args = [spark_submit(), "--master", master, "--archives", f"{bundle_path}#bondlake"]
    for c in conf:
        args += ["--conf", c]
    args += [
        os.path.join(driver, "backfill.py"),
        "--request", location,
        "--bondlake-dir", driver,
        "--endpoint-url", server.endpoint,
    ]
    env = server.env()
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=workdir, check=False)


def step_script(server, location, artifacts, name):
    """The script of the step emr-launcher submits for the request at `location`
    (`bondlake emr-step`)."""
    args = ["emr-step", "--request", location, "--artifacts", artifacts, "--name", name,
            "--endpoint-url", server.endpoint]
    return json.loads(run(args, env=server.env()).stdout)[2]


def aws_cli():
    """The aws CLI beside this interpreter (emr/requirements.txt installs it)."""
    path = os.path.join(os.path.dirname(sys.executable), "aws")
    if not os.path.isfile(path):
        raise RuntimeError(f"{path} is missing: pip install -r emr/requirements.txt")
    return path


TIMES = ("started_at", "finished_at", "processed_at", "duration_ms")


def outputs(server, bucket):
    """What a bucket holds that a backfill writes: Parquet parts as rows without `_ingested_at`
    (the time the run began), quarantine files as bytes, manifests without their times."""
    import pyarrow.parquet as pq

    root = server.bucket(bucket)
    found = {}
    for path in sorted(glob.glob(os.path.join(root, "**", "*"), recursive=True)):
        if os.path.isdir(path) or os.path.basename(path).startswith("."):
            continue
        key = os.path.relpath(path, root)
        if key.startswith("processed/"):
            table = pq.read_table(path)
            found[key] = table.drop_columns(["_ingested_at"]).to_pylist()
        elif key.startswith("quarantine/"):
            with open(path, "rb") as f:
                found[key] = f.read()
        elif key.startswith("manifests/"):
            with open(path) as f:
                manifest = json.load(f)
            for field in TIMES:
                manifest.pop(field, None)
            found[key] = manifest
        elif key.startswith("backfills/") and key.endswith(".result.json"):
            with open(path) as f:
                result = json.load(f)
            result.pop("finished_at", None)
            for p in result.get("problems", []):
                p.pop("seconds", None)
                # A location names its bucket: compare the key.
                if p.get("manifest"):
                    p["manifest"] = p["manifest"].split("/", 3)[3]
            found[key] = result
    return found


def rows_read(server, bucket):
    """Records read over every manifest in `bucket`."""
    total = 0
    for path in glob.glob(os.path.join(server.bucket(bucket), "manifests", "**", "*.json"), recursive=True):
        with open(path) as f:
            total += json.load(f)["rows_read"]
    return total
