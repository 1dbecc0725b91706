"""One S3-protocol server and one EMR bundle per test run (each Spark run starts its own JVM)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import harness  # noqa: E402


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("emr"))


@pytest.fixture(scope="session")
def bundle(workdir):
    return harness.bundle(os.path.join(workdir, "bondlake-emr.tar.gz"))


@pytest.fixture(scope="session")
def server(workdir):
    s = harness.S3Server(os.path.join(workdir, "s3"), [harness.RAW])
    yield s
    s.stop()
