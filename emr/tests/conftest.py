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


@pytest.fixture(scope="session")
def warehouse(workdir):
    """Where the Hive tables of the Spark session live."""
    return os.path.join(workdir, "hive-warehouse")


@pytest.fixture(scope="session")
def spark_session(workdir, warehouse):
    """One local[2] Spark session for the run (a session takes long to start), with Hive support
    on a Derby metastore in the work folder, configured as the weekly job configures its own."""
    from pyspark.sql import SparkSession

    import weekly_trends

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master("local[2]").appName("bondlake-tests")
        .config("spark.sql.warehouse.dir", warehouse)
        .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                "jdbc:derby:;databaseName=%s/metastore_db;create=true" % workdir)
        .config("spark.driver.extraJavaOptions", "-Dderby.system.home=%s" % workdir)
        .config("spark.ui.enabled", "false")
    )
    for k, v in weekly_trends.SESSION.items():
        builder = builder.config(k, v)
    session = builder.enableHiveSupport().getOrCreate()
    # The job's functions are pickled by reference when it is imported, not run as __main__ (as
    # spark-submit runs it): the workers import it too.
    session.sparkContext.addPyFile(weekly_trends.__file__)
    yield session
    session.stop()
