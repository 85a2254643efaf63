import pandas as pd

from quant_assets.strategy.signals import screen

DAY = pd.Timestamp("2024-04-11")


def test_each_untradable_stock_says_why_and_st_may_not_be_held():
    syms = ["600000.SH", "600001.SH", "300001.SZ", "000002.SZ", "000003.SZ", "688001.SH",
            "600005.SH"]  # fmt: skip
    bars = pd.DataFrame({
        "symbol": syms,
        "preclose": 10.0,
        # 600000 sealed at +10%; 300001 +10% on ChiNext (limit 20%) is fine
        "close": [11.0, 10.5, 11.0, 10.2, 9.0, 10.1, 10.0],
        "is_suspended": [False, False, False, True, False, False, False],
        "is_st": [False, False, False, False, True, False, False],
    })  # fmt: skip
    uni = pd.DataFrame({"symbol": syms, "board": ["main", "main", "chinext", "main", "main", "star",
                                                  "main"],
                        "list_date": ["2010-01-04"] * 5 + ["2024-03-01", "2010-01-04"]})  # fmt: skip
    preds = pd.DataFrame({"symbol": syms, "score": [7.0, 6, 5, 4, 3, 2, 1], "probability": 0.5,
                          "confidence": 0.9})  # fmt: skip
    out = screen(preds, bars, uni, DAY, blacklist=("600005.SH",)).set_index("symbol")
    assert out["rank"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert out.loc[out["buyable"]].index.tolist() == ["600001.SH", "300001.SZ"]
    assert out["note"].to_dict() == {
        "600000.SH": "closed at limit-up",
        "600001.SH": "",
        "300001.SZ": "",
        "000002.SZ": "suspended",
        "000003.SZ": "ST",
        "688001.SH": "listed under 60 days",
        "600005.SH": "blacklisted",
    }
    assert out.loc[~out["holdable"]].index.tolist() == ["000003.SZ", "600005.SH"]
