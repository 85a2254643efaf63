"""The resources a schedule or sensor is evaluated with in tests: only those it asks for, as
Dagster's daemon gives them (the others, ClickHouse among them, would be opened for nothing,
in the repository's own data folder)."""

from __future__ import annotations


def required_resources(repo, definition) -> dict:
    """The code location's resources that `definition` (a schedule or sensor) requires."""
    everything = repo.get_top_level_resources()
    return {k: everything[k] for k in definition.required_resource_keys}
