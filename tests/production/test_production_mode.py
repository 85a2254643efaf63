"""Production mode, for real on this machine (DESIGN.md section 3): the daily pipeline runs with
the Dagster instance that docker-compose.yml ships (Postgres storage, a run queue with a
concurrency limit; only its Docker run launcher replaced by Dagster's default one), MLflow's
backend store on Postgres with its artifacts on S3 (moto's server on loopback), and the cache
of hot reads on Redis. Every database is created fresh for the test and dropped after it."""

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import yaml
from dagster import DagsterInstance, DagsterRunStatus, Definitions, materialize
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.workspace.load_target import PythonFileTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)
from dagster._serdes import deserialize_value

from quant_assets.automation.jobs import daily_pipeline, history_load
from quant_assets.definitions import defs
from resources import ClickHouseResource, MarketDataResource, MLflowResource, stack_resources
from resources.cache import CacheResource
from tests.models.test_registry_s3 import BUCKET
from tests.pipeline.test_daily_pipeline import ALL_ASSETS, DAYS, RUN_CONFIG, WARMUP
from tests.services import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    REDIS_URL,
    missing_services,
    postgres_connection,
    postgres_user,
)

pytestmark = pytest.mark.slow

_missing = missing_services()
if _missing:
    pytest.skip(_missing, allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
DAY = DAYS[0]
HOT_TABLES = ("adjusted_bars", "active_factors", "recommendations")  # TableSpec.cached
S3_PREFIX = "production"
DEFAULT_LAUNCHER = {"module": "dagster", "class": "DefaultRunLauncher"}  # no Docker here


def production_instance_config() -> dict:
    """The Dagster instance of docker-compose.yml (`configs.dagster_instance`), its Docker run
    launcher replaced by Dagster's default launcher."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    config = yaml.safe_load(compose["configs"]["dagster_instance"]["content"])
    return {**config, "run_launcher": DEFAULT_LAUNCHER}


@pytest.fixture(scope="module")
def postgres():
    """Two fresh databases on the machine's Postgres, the Dagster instance's and MLflow's,
    dropped at the end (with whatever connections are left)."""
    user = postgres_user()
    names = {what: f"quant_{what}_{uuid.uuid4().hex[:10]}" for what in ("dagster", "mlflow")}
    admin = postgres_connection(user, "postgres")
    with admin.cursor() as cur:
        for name in names.values():
            cur.execute(f"CREATE DATABASE {name}")
    try:
        yield {"user": user, **names}
    finally:
        with admin.cursor() as cur:
            for name in names.values():
                cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture(scope="module")
def instance(postgres, tmp_path_factory):
    """The production Dagster instance on the fresh database, from its DAGSTER_HOME."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(yaml.safe_dump(production_instance_config()))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        mp.setenv("DAGSTER_POSTGRES_HOST", POSTGRES_HOST)
        mp.setenv("DAGSTER_POSTGRES_USER", postgres["user"])
        mp.setenv("DAGSTER_POSTGRES_PASSWORD", "")  # trust auth on loopback
        mp.setenv("DAGSTER_POSTGRES_DB", postgres["dagster"])
        try:
            production = DagsterInstance.from_config(str(home))
        except (DagsterInvalidConfigError, ImportError) as exc:
            hint = (
                " (SQLAlchemy 2.1 reads postgresql:// as psycopg 3, which dagster-postgres cannot "
                "use: its postgres_db block needs `scheme: postgresql+psycopg2`)"
                if "psycopg" in str(exc)
                else ""
            )
            pytest.fail(f"docker-compose.yml's dagster_instance does not load: {exc!r}{hint}")
        try:
            yield production
        finally:
            production.dispose()


@pytest.fixture
def cache():
    """The cache on the machine's Redis under a key prefix of this test, deleted after it."""
    prefix = f"test-production-{uuid.uuid4().hex[:12]}"
    yield CacheResource(redis_url=REDIS_URL, prefix=prefix)
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def _query(postgres: dict, database: str, sql: str, params: tuple = ()) -> list[tuple]:
    conn = postgres_connection(postgres["user"], postgres[database])
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def _production_resources(root: Path, postgres: dict, cache: CacheResource) -> dict:
    """The stack of the code location with MLflow on Postgres and S3, and the IO managers'
    hot reads cached on Redis."""
    clickhouse = ClickHouseResource(dsn=f"chdb://{root / 'ch'}", database="quant")
    tracking = MLflowResource(
        tracking_uri=f"postgresql+psycopg2://{postgres['user']}@{POSTGRES_HOST}:{POSTGRES_PORT}/"
        f"{postgres['mlflow']}",
        s3_bucket=f"{BUCKET}/{S3_PREFIX}",
        experiment="production",
    )
    market = MarketDataResource(
        n_symbols=40, seed=3, sim_end="2024-12-31", landing_dir=str(root / "landing")
    )
    return stack_resources(clickhouse, tracking, market, cache)


def _frame_keys(cache: CacheResource, name: str) -> dict[int, int]:
    """The cached reads of the table `name` (as the IO manager names it) in Redis: how many at
    each generation of the table."""
    client = redis.Redis.from_url(REDIS_URL)
    counts: dict[int, int] = {}
    for key in client.scan_iter(f"{cache.prefix}:frame:{name}:*"):
        generation = int(key.decode().rsplit(":", 2)[1].split(".")[0])
        counts[generation] = counts.get(generation, 0) + 1
        assert 0 < client.ttl(key) <= cache.ttl_seconds  # the TTL cleans up unreachable ones
    return counts


def test_the_daily_pipeline_runs_on_postgres_s3_and_redis(
    instance, postgres, s3, cache, tmp_path, monkeypatch
):
    monkeypatch.setenv("QUANT_DATA_DIR", str(tmp_path))
    resources = _production_resources(tmp_path, postgres, cache)
    production = Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=[history_load, daily_pipeline],
        resources=resources,
    )
    days = WARMUP.strftime("%Y-%m-%d")
    history = production.resolve_job_def("history_load").execute_in_process(
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: days[0], ASSET_PARTITION_RANGE_END_TAG: days[-1]},
        raise_on_error=False,
    )
    assert history.success
    daily = production.resolve_job_def("daily_pipeline").execute_in_process(
        instance=instance, partition_key=DAY, run_config=RUN_CONFIG, raise_on_error=False
    )
    assert daily.success

    # the runs and their events are stored in the instance's Postgres database
    stored = dict(
        _query(
            postgres,
            "dagster",
            "SELECT run_id, status FROM runs WHERE run_id IN %s",
            ((history.run_id, daily.run_id),),
        )
    )
    assert stored == {history.run_id: "SUCCESS", daily.run_id: "SUCCESS"}
    ((events,),) = _query(
        postgres, "dagster", "SELECT count(*) FROM event_logs WHERE run_id = %s", (daily.run_id,)
    )
    assert events > 100

    # MLflow's runs and registered models in its Postgres database, artifacts in the bucket
    ((runs,),) = _query(postgres, "mlflow", "SELECT count(*) FROM runs")
    assert runs > 0
    models = dict(_query(postgres, "mlflow", "SELECT name, storage_location FROM model_versions"))
    assert {"quant_lgbm", "quant_ensemble"} <= set(models)
    assert all(loc.startswith(f"s3://{BUCKET}/{S3_PREFIX}/") for loc in models.values())
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{S3_PREFIX}/production/")
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert sum(k.endswith("/MLmodel") for k in keys) >= 2
    assert not (tmp_path / "mlflow").exists()  # nothing went to the local store

    # the hot reads are cached in Redis, at the tables' current generations
    name = resources["clickhouse_io"].cache_name
    before = {t: cache.generation(name(t)) for t in HOT_TABLES}
    for table in HOT_TABLES:
        assert _frame_keys(cache, name(table)).get(before[table], 0) > 0, table
    # every table written got a generation, the hot ones and the others
    assert cache.generation(name("predictions")) > 0

    # a rewrite of the day's recommendations: the next read (the report's) misses the stale
    # entries, reads ClickHouse and caches the new data at the new generation
    rerun = materialize(
        ALL_ASSETS,
        selection=["recommendations", "performance"],
        partition_key=DAY,
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    assert rerun.success
    after = cache.generation(name("recommendations"))
    assert after == before["recommendations"] + 1
    entries = _frame_keys(cache, name("recommendations"))
    assert entries.get(before["recommendations"], 0) > 0  # still stored, no longer reachable
    assert entries.get(after, 0) > 0
    assert cache.generation(name("adjusted_bars")) == before["adjusted_bars"]


def test_the_run_queue_holds_back_runs_over_the_limit(instance):
    limit = instance.get_concurrency_config().run_queue_config.max_concurrent_runs
    target = PythonFileTarget(
        python_file=str(Path(__file__).with_name("queue_probe.py")),
        attribute=None,
        working_directory=str(ROOT),
        location_name="queue_probe",
    )
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    with create_test_daemon_workspace_context(target, instance) as workspace:
        location = workspace.create_request_context().get_code_location("queue_probe")
        remote = location.get_repository("__repository__").get_full_job("probe")
        from tests.production.queue_probe import probe

        runs = [
            instance.create_run_for_job(
                job_def=probe,
                remote_job_origin=remote.get_remote_origin(),
                job_code_origin=remote.get_python_origin(),
            )
            for _ in range(limit + 1)
        ]
        for run in runs:  # as the webserver submits a run: through the instance's coordinator
            instance.submit_run(run.run_id, workspace.create_request_context())
        ids = [r.run_id for r in runs]
        assert _statuses(instance, ids).count(DagsterRunStatus.QUEUED) == limit + 1

        list(daemon.run_iteration(workspace))  # one tick of the daemon
        statuses = _statuses(instance, ids)
        assert statuses.count(DagsterRunStatus.QUEUED) == 1  # held back: over the limit
        launched = [i for i, s in zip(ids, statuses, strict=True) if s != DagsterRunStatus.QUEUED]
        assert len(launched) == limit
        _wait_until_done(instance, launched)

        list(daemon.run_iteration(workspace))  # slots free: the held-back runs go
        _wait_until_done(instance, ids)
        assert _statuses(instance, ids) == [DagsterRunStatus.SUCCESS] * (limit + 1)
        # the code server forgets a run shortly after its worker exits; it must have before the
        # database goes, or it waits for the run forever
        _wait_until(lambda: not deserialize_value(location.client.get_current_runs()).current_runs)


def _statuses(instance: DagsterInstance, run_ids: list[str]) -> list[DagsterRunStatus]:
    return [instance.get_run_by_id(i).status for i in run_ids]


def _wait_until_done(instance: DagsterInstance, run_ids: list[str]) -> None:
    """Wait for the runs to end (their workers are processes of the code server)."""
    _wait_until(lambda: all(instance.get_run_by_id(i).is_finished for i in run_ids))


def _wait_until(done: Callable[[], bool], timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"still waiting after {timeout_s} s"
        time.sleep(0.5)
