"""Models: one dataset, a zoo of six families behind one interface, ensembles, tuning and
`walk_forward` (pure logic; Dagster wiring lives in ``assets.py``)."""

from .walk_forward import WindowFit, fit_window, walk_forward

__all__ = ["WindowFit", "fit_window", "walk_forward"]
