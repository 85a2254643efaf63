"""Memory placement for large numpy work: ordinary 4 KB pages instead of huge pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

import numpy as np

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def normal_pages() -> Iterator[None]:
    """Allocate numpy arrays on ordinary pages inside the block.

    numpy advises the kernel to back arrays of 4 MB and more with transparent huge pages. For
    arrays written once and soon freed (a result matrix, a validation mask) that only adds the
    cost of finding and clearing 2 MB pages at the first touch, which on a fragmented or
    virtualised host varies from nothing to most of the run (measured: Alpha158 ~1 s of system
    time; order-book validation 0.20 s steady instead of 0.20-0.30 s). The switch is private
    numpy API: without it the block runs unchanged."""
    multiarray = getattr(getattr(np, "_core", None), "multiarray", None)
    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    if setter is None:
        yield
        return
    previous = setter(False)
    try:
        yield
    finally:
        setter(previous)


def on_normal_pages(func: Callable[P, R]) -> Callable[P, R]:
    """Run `func` inside `normal_pages()`."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with normal_pages():
            return func(*args, **kwargs)

    return wrapper
