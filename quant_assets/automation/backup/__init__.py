"""Backup and recovery of the platform: ClickHouse tables, the MLflow store and the Dagster
instance to content-addressed objects on S3 or a folder, with manifests, retention,
encryption and verified restores (`jobs.py` holds the Dagster jobs and the schedule)."""
