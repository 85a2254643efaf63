import pandas as pd

from quant_assets.strategy.selection import select_top_n, tradable_mask


def test_untradable_symbols_are_never_selected():
    bars = pd.DataFrame(
        {
            "symbol": ["600000.SH", "600001.SH", "300001.SZ", "000002.SZ", "000003.SZ"],
            "preclose": [10.0, 10.0, 10.0, 10.0, 10.0],
            "close": [11.0, 10.5, 11.0, 10.2, 9.0],  # 600000 sealed limit-up (+10%)
            "is_suspended": [False, False, False, True, False],
            "is_st": [False, False, False, False, True],
        }
    )
    uni = pd.DataFrame(
        {"symbol": bars["symbol"], "board": ["main", "main", "chinext", "main", "main"]}
    )
    mask = tradable_mask(bars, uni)
    # ChiNext limit is 20%, so +10% there is tradable; suspended and ST are not.
    assert mask.to_dict() == {
        "600000.SH": False,
        "600001.SH": True,
        "300001.SZ": True,
        "000002.SZ": False,
        "000003.SZ": False,
    }
    scores = pd.Series([5.0, 1.0, 2.0, 9.0, 8.0], index=bars["symbol"])
    top = select_top_n(scores, mask, 2)
    assert top["symbol"].tolist() == ["300001.SZ", "600001.SH"]
    assert top["rank"].tolist() == [1, 2]
    assert top["weight"].sum() == 1.0
