import numpy as np
import pytest

from quant_assets.memory import normal_pages, on_normal_pages

_SETTER = getattr(getattr(np, "_core", None), "multiarray", None)
_SETTER = getattr(_SETTER, "_set_madvise_hugepage", None)


@pytest.mark.skipif(_SETTER is None, reason="this numpy has no huge-page switch")
def test_huge_pages_are_off_inside_and_restored_after():
    _SETTER(True)
    with normal_pages():
        assert _SETTER(False) is False  # returns the setting in force: off
        assert np.ones(1 << 20).sum() == 1 << 20
    assert _SETTER(True) is True  # restored


@pytest.mark.skipif(_SETTER is None, reason="this numpy has no huge-page switch")
def test_the_decorator_keeps_the_function_and_restores_on_error():
    @on_normal_pages
    def fails(x: int) -> int:
        """doc"""
        assert _SETTER(False) is False
        raise RuntimeError(x)

    _SETTER(True)
    with pytest.raises(RuntimeError, match="3"):
        fails(3)
    assert fails.__doc__ == "doc" and _SETTER(True) is True
