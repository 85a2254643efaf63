"""The drawing processes (`quant_assets.plotting.draw`): a figure is drawn in another process,
its error reaches the reader, and a `Pending` metadata value becomes the drawn result on the
materialization."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import pytest
from dagster import AssetKey, DagsterInstance, MetadataValue, Output, asset, materialize

from quant_assets.calendar import TRADING_DAYS
from quant_assets.day_range import Pending, by_day
from quant_assets.plotting import draw, png_markdown, to_png

DAY = "2024-06-28"


def line_png(values: list[float]) -> tuple[int, bytes]:
    """A line plot as PNG bytes, with the pid of the process that drew it."""
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(values)
    return os.getpid(), to_png(fig)


def broken(values: list[float]) -> bytes:
    raise ValueError(f"cannot draw {len(values)} values")


def test_a_figure_is_drawn_in_another_process():
    pid, png = draw(line_png, [1.0, 3.0, 2.0]).result(timeout=120)
    assert pid != os.getpid()
    assert png.startswith(b"\x89PNG") and len(png) > 1000


def test_an_error_while_drawing_reaches_the_reader():
    with pytest.raises(ValueError, match="cannot draw 2 values"):
        draw(broken, [1.0, 2.0]).result(timeout=120)


def _body():
    drawn = draw(line_png, [1.0, 2.0])
    yield Output(
        1,
        metadata={
            "plot": Pending(drawn, lambda got: MetadataValue.md(png_markdown(got[1], "line"))),
            "rows": 1,
        },
    )


pending_plot = asset(name="pending_plot", partitions_def=TRADING_DAYS)(
    by_day(_body, ins={}, own="pending_plot")
)


def test_a_pending_plot_is_recorded_as_drawn_on_the_materialization():
    instance = DagsterInstance.ephemeral()
    assert materialize([pending_plot], instance=instance, partition_key=DAY).success
    event = instance.get_latest_materialization_event(AssetKey("pending_plot"))
    meta = event.asset_materialization.metadata
    assert meta["rows"].value == 1
    assert isinstance(meta["plot"], MetadataValue.md("").__class__)
    assert meta["plot"].value.startswith("**line**\n\n![line](data:image/png;base64,iVBOR")
