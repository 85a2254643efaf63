"""A code location of one cheap job for the run-queue test: its runs only start and end, so the
test watches the queue and not the work."""

from dagster import Definitions, job, op


@op
def noop() -> None:
    """Does nothing: the run exists to be queued, launched and finished."""


@job
def probe() -> None:
    noop()


defs = Definitions(jobs=[probe])
