"""Backup and restore as Dagster jobs: `backup_job` (back up, then apply retention) on a daily
schedule, and `restore_job` (a chosen backup into an empty database and empty folders).

The logic is in `backup` and `backup_restore`; these ops open the clients, pass the
configuration and report.
"""

import os
from pathlib import Path

from dagster import (
    Config,
    DefaultScheduleStatus,
    MetadataValue,
    OpExecutionContext,
    Output,
    ScheduleDefinition,
    job,
    op,
)
from pydantic import Field

from quant_assets.automation.backup.codec import parse_key
from quant_assets.automation.backup.create import apply_retention, run_backup
from quant_assets.automation.backup.restore import restore_backup
from quant_assets.calendar import TZ
from resources.backup_store import BackupStoreResource
from resources.clickhouse import ClickHouseResource
from resources.settings import data_dir

# One backup, retention or restore at a time per deployment: a retention running beside a
# backup could delete an object the backup is about to reference (dagster.yaml gives a pool
# one slot by default).
POOL = "backup_store"


def _key(store: BackupStoreResource) -> bytes | None:
    return parse_key(store.encryption_key) if store.encryption_key else None


def _env_url(name: str) -> str:
    """The URL an environment variable holds (a secret: read here, never in the config)."""
    url = os.environ.get(name, "").strip()
    if not url:
        raise ValueError(f"environment variable {name} (a database to back up) is not set")
    return url


def _table(rows: dict[str, int], header: str = "rows") -> MetadataValue:
    lines = [f"| table | {header} |", "|---|---:|"]
    lines += [f"| {name} | {n:,} |" for name, n in rows.items()]
    return MetadataValue.md("\n".join(lines))


class BackupConfig(Config):
    """What goes into a backup besides the ClickHouse tables."""

    mlflow_dir: str | None = Field(
        default=None,
        description="MLflow's local store (SQLite database and artifacts); unset: "
        "$QUANT_DATA_DIR/mlflow. Left out when the folder does not exist (an MLflow server "
        "keeps its store in its own database and bucket)",
    )
    dagster_home: str | None = Field(
        default=None, description="the Dagster instance folder; unset: this instance's own"
    )
    include_mlflow: bool = Field(default=True, description="back up the MLflow store")
    include_dagster: bool = Field(
        default=True,
        description="back up the Dagster instance: its folder, and its PostgreSQL database "
        "when its storage is on Postgres (archive `dagster_postgres`)",
    )
    postgres_env: list[str] = Field(
        default=[],
        description="environment variables holding URLs of further PostgreSQL databases to "
        "back up with pg_dump (MLflow's backend store in production); each archive is named "
        "after its variable, lower-cased",
    )


@op(
    pool=POOL,
    description="Export every ClickHouse table, the MLflow store and the Dagster instance to "
    "the backup store; complete once its manifest is written.",
)
def back_up_platform(
    context: OpExecutionContext,
    config: BackupConfig,
    clickhouse: ClickHouseResource,
    backup_store: BackupStoreResource,
) -> Output[str]:
    folders: dict[str, Path] = {}
    postgres = {name.lower(): _env_url(name) for name in config.postgres_env}
    if config.include_mlflow:
        folders["mlflow"] = Path(config.mlflow_dir) if config.mlflow_dir else data_dir() / "mlflow"
    if config.include_dagster:
        folders["dagster"] = Path(config.dagster_home or context.instance.root_directory)
        url = getattr(context.instance.run_storage, "postgres_url", None)
        if url:  # dagster-postgres: runs, events and schedules live in that database
            postgres["dagster_postgres"] = url
    store = backup_store.open()
    with clickhouse.client() as client:
        summary = run_backup(
            client,
            clickhouse.database,
            store,
            key=_key(backup_store),
            folders=folders,
            postgres=postgres,
            log=context.log.info,
        )
    return Output(
        summary.backup_id,
        metadata={
            "backup_id": summary.backup_id,
            "store": store.describe(),
            "encrypted": backup_store.encryption_key is not None,
            "tables": len(summary.tables),
            "rows": summary.rows,
            "partitions": summary.partitions,
            "partitions_exported": summary.exported,
            "partitions_unchanged": summary.reused,
            "uploaded_objects": summary.uploaded_objects,
            "uploaded_bytes": summary.uploaded_bytes,
            "stored_bytes": summary.stored_bytes,
            "archives": MetadataValue.json(summary.archives),
            "seconds": round(summary.seconds, 2),
            "rows_per_table": _table(summary.tables),
        },
    )


@op(
    pool=POOL,
    description="Delete the backups the retention policy drops and the objects no kept "
    "backup references.",
)
def apply_backup_retention(
    context: OpExecutionContext, backup_id: str, backup_store: BackupStoreResource
) -> Output[None]:
    summary = apply_retention(
        backup_store.open(),
        backup_store.keep_daily,
        backup_store.keep_weekly,
        key=_key(backup_store),
        log=context.log.info,
    )
    return Output(
        None,
        metadata={
            "new_backup": backup_id,
            "kept": MetadataValue.json(summary.kept),
            "deleted_backups": MetadataValue.json(summary.deleted_backups),
            "abandoned_backups_cleaned": MetadataValue.json(summary.abandoned),
            "deleted_objects": summary.deleted_objects,
            "freed_bytes": summary.freed_bytes,
        },
    )


@job(
    description="Back up ClickHouse (Native, partition by partition, unchanged partitions "
    "reused), the MLflow store and the Dagster instance to the backup store, then apply "
    "the retention policy.",
    tags={"kind": "backup"},
)
def backup_job() -> None:
    apply_backup_retention(back_up_platform())


class RestoreConfig(Config):
    """Which backup to restore, and where."""

    backup_id: str = Field(default="latest", description='a backup id or "latest"')
    target_database: str | None = Field(
        default=None,
        description="database to restore the tables into (created if absent, refused when it "
        "holds any table); unset: no tables",
    )
    mlflow_dir: str | None = Field(
        default=None, description="empty folder to restore the MLflow store into; unset: not"
    )
    dagster_home: str | None = Field(
        default=None,
        description="empty folder to restore the Dagster instance into; unset: not (stop "
        "Dagster before putting it in place of DAGSTER_HOME)",
    )
    postgres_targets: dict[str, str] = Field(
        default={},
        description="database archive (`dagster_postgres`, or a postgres_env name lower-cased) "
        "-> environment variable holding the URL of an empty PostgreSQL database to restore "
        "it into",
    )


@op(
    pool=POOL,
    description="Restore a backup into an empty database and empty folders, checking every "
    "object's sha256 before loading it and every partition's rows and content after.",
)
def restore_platform(
    context: OpExecutionContext,
    config: RestoreConfig,
    clickhouse: ClickHouseResource,
    backup_store: BackupStoreResource,
) -> Output[str]:
    folders = {
        name: Path(folder)
        for name, folder in (("mlflow", config.mlflow_dir), ("dagster", config.dagster_home))
        if folder
    }
    postgres = {name: _env_url(env) for name, env in config.postgres_targets.items()}
    if config.target_database is None and not folders and not postgres:
        raise ValueError(
            "restore_job has nothing to do: set target_database, mlflow_dir, dagster_home "
            "or postgres_targets"
        )
    with clickhouse.client() as client:
        summary = restore_backup(
            client,
            backup_store.open(),
            config.target_database,
            backup=config.backup_id,
            key=_key(backup_store),
            folders=folders,
            postgres=postgres,
            log=context.log.info,
        )
    return Output(
        summary.backup_id,
        metadata={
            "backup_id": summary.backup_id,
            "database": summary.database or "(tables not restored)",
            "tables": len(summary.tables),
            "rows": sum(summary.tables.values()),
            "partitions_verified": summary.partitions,
            "archives": MetadataValue.json(
                {n: str(f) for n, f in folders.items()} | dict.fromkeys(postgres, "postgres")
            ),
            "archive_files": MetadataValue.json(summary.archives),
            "seconds": round(summary.seconds, 2),
            "rows_per_table": _table(summary.tables, "rows (verified)"),
        },
    )


@job(
    description="Restore a backup (the latest complete one by default) into an empty "
    "database and empty folders, verified against its manifest.",
    tags={"kind": "restore"},
)
def restore_job() -> None:
    restore_platform()


backup_daily = ScheduleDefinition(
    name="backup_daily",
    job=backup_job,
    cron_schedule="0 23 * * *",
    execution_timezone=TZ,
    default_status=DefaultScheduleStatus.STOPPED,
    description="Every day at 23:00 Shanghai time, after the daily pipeline: a backup of "
    "ClickHouse, MLflow and the Dagster instance, then retention.",
)
