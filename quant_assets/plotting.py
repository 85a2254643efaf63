"""Figures as PNG bytes, and PNGs as markdown the Dagster UI shows in an asset's metadata;
figures drawn in a process of their own while the step goes on (`draw`).

Drawing is a third of a daily run's time (a dozen figures a day, 0.1 to 0.3 s each) and needs
nothing from the step but a few small frames, so the step hands it to the drawing processes
and collects the result when the day's output metadata is recorded: the second core draws
while the first computes the next day, and both draw while the step waits for its plots. The
result is a `concurrent.futures.Future`: as output metadata, wrap it in `day_range.Pending`;
the MLflow IO manager waits for one in a model's files.

The processes are spawned (the step's process holds threads and an open database, which a
fork would copy mid-flight), so, as for Dagster's multiprocess executor, a script that
materializes assets must keep its work under `if __name__ == "__main__":` (the spawned
process imports the script as a module); `dagster`, `pytest` and `python -m` entry points
are.
"""

from __future__ import annotations

import atexit
import base64
import io
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import matplotlib

matplotlib.use("Agg")  # no screen: every figure is drawn to a file or to bytes

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def _chinese_fallback() -> None:
    """Glyphs DejaVu lacks (Chinese stock names) fall back to Noto Sans CJK SC, shipped by
    the mplfonts package: without it they draw as empty boxes."""
    try:
        import mplfonts
    except ImportError:  # pragma: no cover - a dependency; plots still draw, names as boxes
        return
    from pathlib import Path

    font = Path(mplfonts.__file__).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
    if font.exists():
        font_manager.fontManager.addfont(str(font))
        matplotlib.rcParams["font.family"] = ["DejaVu Sans", "Noto Sans CJK SC"]


_chinese_fallback()

T = TypeVar("T")


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of `fig`; closes it so figures do not pile up in long runs. zlib's fastest
    level: a third of the default's encoding time for files about 10% larger."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    plt.close(fig)
    return buf.getvalue()


def set_margins(
    fig: Figure, left: float = 0.8, right: float = 0.2, top: float = 0.45, bottom: float = 0.5
) -> None:
    """Fixed margins in inches around the axes: what `tight_layout` finds for these plots,
    without the extra draw it costs (a quarter of a small figure's time)."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height
    )


def png_markdown(png: bytes, title: str) -> str:
    """The PNG inline in markdown under a bold title (a data URL: the UI needs no file)."""
    return f"**{title}**\n\n![{title}](data:image/png;base64,{base64.b64encode(png).decode()})"


# Two: while a step waits for its plots, both cores draw.
DRAWING_PROCESSES = 2
_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _drawing_processes() -> ProcessPoolExecutor:
    """The drawing processes of this process, started on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                DRAWING_PROCESSES, mp_context=multiprocessing.get_context("spawn")
            )
            atexit.register(_pool.shutdown)
        return _pool


def start_drawing() -> None:
    """Start the drawing processes now (they take a few seconds to import what they draw
    with), for a caller that knows plots are coming: the demo, before its history load."""
    for _ in range(DRAWING_PROCESSES):
        draw(_nothing)


def _nothing() -> None:
    """A task that only makes the pool start a process."""


def draw(fn: Callable[..., T], *args: Any) -> Future[T]:
    """`fn(*args)` in a drawing process. `fn` is a module-level function and its arguments
    pickle (small frames, paths); it may write files too. An error in `fn` is raised where the
    result is read; a drawing process that died is replaced on the next call."""
    global _pool
    try:
        return _drawing_processes().submit(fn, *args)
    except BrokenProcessPool:
        with _pool_lock:
            _pool = None
        return _drawing_processes().submit(fn, *args)
