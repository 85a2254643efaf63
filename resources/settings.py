"""Where the embedded stack keeps its files, and how settings come from the environment."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import EnvVar


def data_dir() -> Path:
    """The project's data folder (ClickHouse, MLflow, reports): ``QUANT_DATA_DIR`` or ./.data."""
    return Path(os.environ.get("QUANT_DATA_DIR", Path.cwd() / ".data")).resolve()


def env_or(name: str, default: str | None) -> str | EnvVar | None:
    """An EnvVar when the variable is set (Dagster resolves it at run time and never shows its
    value), else the embedded default."""
    return EnvVar(name) if os.environ.get(name) else default


def env_int(name: str, default: int) -> int:
    """An integer setting from the environment; a value that is not one names the variable."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
