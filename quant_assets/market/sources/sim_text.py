"""Words for the simulated market: industries, company names and templated news text.

Kept apart from the numerical simulation so that the wording can change without touching the
random streams. News wording follows the item's sentiment bucket, so a text model trained on
titles learns the same signal as the numeric `sentiment` column.
"""

from __future__ import annotations

import numpy as np

# (industry, Chinese name endings typical of the industry). Finance, property and utilities
# list on the main board only.
INDUSTRIES: list[tuple[str, tuple[str, ...]]] = [
    ("Banks", ("银行", "农商行", "商业银行")),
    ("Non-bank Finance", ("证券", "保险", "信托")),
    ("Real Estate", ("地产", "置业", "发展")),
    ("Utilities", ("电力", "能源", "水务")),
    ("Pharmaceuticals", ("药业", "医药", "生物")),
    ("Food & Beverage", ("食品", "酒业", "乳业")),
    ("Electronics", ("电子", "微电", "光电")),
    ("Computers", ("软件", "信息", "数据")),
    ("Machinery", ("机械", "重工", "装备")),
    ("Automobiles", ("汽车", "汽配", "动力")),
    ("Chemicals", ("化工", "材料", "新材")),
    ("Nonferrous Metals", ("有色", "矿业", "锂业")),
    ("Power Equipment", ("电气", "电源", "储能")),
    ("Media", ("传媒", "文化", "影视")),
]
MAIN_BOARD_ONLY = {"Banks", "Non-bank Finance", "Real Estate", "Utilities"}

_FIRST = "华东南北中新金长海天宏恒国永京粤川鲁浙闽湘赣"
_SECOND = "夏方科达信泰安能光龙江源成通盛鑫利兴汇润丰"


def company_names(rng: np.random.Generator, industry_idx: np.ndarray) -> list[str]:
    """Unique two-character brand + industry ending names, e.g. "华科电子"."""
    names: list[str] = []
    seen: set[str] = set()
    for g in industry_idx:
        endings = INDUSTRIES[int(g)][1]
        for attempt in range(1000):
            name = (
                _FIRST[rng.integers(len(_FIRST))]
                + _SECOND[rng.integers(len(_SECOND))]
                + endings[rng.integers(len(endings))]
            )
            if attempt > 50:  # the brand x ending space is exhausted for huge universes
                name += str(attempt)
            if name not in seen:
                break
        seen.add(name)
        names.append(name)
    return names


SOURCES = [
    "Securities Times",
    "China Securities Journal",
    "Shanghai Securities News",
    "Cailian Press",
    "证券时报",
    "中国证券报",
    "上海证券报",
    "财联社",
]
# Exchange filings: corporate-action announcements come from here.
FILING_SOURCE = "Exchange filing"

# Sentiment buckets: strongly negative (<= -0.5), negative, neutral (|s| < 0.15), positive,
# strongly positive (>= 0.5).
BUCKET_EDGES = np.array([0.15, 0.5])

# TITLES[bucket][language] -> templates; language 0 English, 1 Chinese.
TITLES: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (
        (
            "{name} net profit plunges {pct}% in {period}",
            "{name} under CSRC investigation over suspected disclosure violations",
            "{name} warns of a full-year loss as orders collapse",
        ),
        (
            "{name}：{period}净利润同比下降{pct}%",
            "{name}因涉嫌信息披露违规被证监会立案调查",
            "{name}预计全年亏损 订单大幅下滑",
        ),
    ),
    (
        (
            "{name} reports slower revenue growth in {period}",
            "Major shareholder of {name} plans to cut stake by up to {small}%",
            "{name} receives exchange inquiry letter on its accounts",
        ),
        (
            "{name}：{period}营收增速放缓",
            "{name}大股东拟减持不超过{small}%股份",
            "{name}收到交易所问询函",
        ),
    ),
    (
        (
            "{name} to hold annual shareholders' meeting",
            "{name} answers investor questions on its main business",
            "{name} completes board re-election",
        ),
        (
            "{name}将召开年度股东大会",
            "{name}在互动平台回复投资者提问",
            "{name}完成董事会换届选举",
        ),
    ),
    (
        (
            "{name} expects steady growth as new orders rise",
            "Brokers raise {name} to buy on improving margins",
            "{name} signs strategic cooperation agreement",
        ),
        (
            "{name}新增订单饱满 经营稳步向好",
            "多家券商上调{name}评级至买入",
            "{name}签署战略合作协议",
        ),
    ),
    (
        (
            "{name} net profit jumps {pct}% in {period}, beating forecasts",
            "{name} wins CNY {amount} billion contract",
            "{name} launches buyback of up to CNY {amount} billion",
        ),
        (
            "{name}：{period}净利润同比增长{pct}%，超出市场预期",
            "{name}中标{amount}亿元重大合同",
            "{name}拟斥资不超过{amount}亿元回购股份",
        ),
    ),
]

BODIES: list[tuple[str, str]] = [
    (
        "{name} ({symbol}) said results fell well short of expectations; analysts expect "
        "further downgrades.",
        "{name}（{symbol}）公告称业绩远低于预期，分析人士预计评级或将继续下调。",
    ),
    (
        "{name} ({symbol}) disclosed the matter in a filing; the company said operations "
        "face some pressure.",
        "{name}（{symbol}）发布公告披露上述事项，公司表示经营面临一定压力。",
    ),
    (
        "{name} ({symbol}) disclosed the matter in a routine filing.",
        "{name}（{symbol}）发布例行公告披露上述事项。",
    ),
    (
        "{name} ({symbol}) said business is improving; analysts see upside to earnings.",
        "{name}（{symbol}）表示经营持续改善，分析人士认为盈利有望超预期。",
    ),
    (
        "{name} ({symbol}) said the results were strong across all segments; analysts "
        "expect upgrades to follow.",
        "{name}（{symbol}）表示各业务板块表现强劲，分析人士预计将迎来上调评级。",
    ),
]

PERIODS = ("Q1", "H1", "Q3", "FY2023", "FY2024")
PERIODS_ZH = ("一季度", "上半年", "前三季度", "2023年度", "2024年度")


def sentiment_bucket(sentiment: np.ndarray) -> np.ndarray:
    """Bucket 0-4 (strongly negative ... strongly positive) of each sentiment score."""
    strength = np.searchsorted(BUCKET_EDGES, np.abs(sentiment), side="right")
    return 2 + np.sign(sentiment).astype(int) * strength


def news_text(
    bucket: int, lang: int, variant: int, name: str, symbol: str, number: float
) -> tuple[str, str]:
    """Title and body of one news item; `number` in [0, 1) fills the figures of the template."""
    fields = {
        "name": name,
        "symbol": symbol,
        "pct": f"{10 + 90 * number:.1f}",
        "small": f"{1 + 2 * number:.1f}",
        "amount": f"{0.5 + 20 * number:.1f}",
        "period": (PERIODS_ZH if lang else PERIODS)[int(number * len(PERIODS))],
    }
    titles = TITLES[bucket][lang]
    title = titles[variant % len(titles)].format(**fields)
    return title, BODIES[bucket][lang].format(**fields)


def action_text(
    lang: int, name: str, symbol: str, cash: float, bonus: float, split: float, ex_date: str
) -> tuple[str, str]:
    """Title and body of a corporate-action announcement (dividend, bonus shares or split)."""
    if split != 1.0:
        if lang:
            return (
                f"{name}：股票拆细方案公告（每1股拆分为{split:g}股）",
                f"{name}（{symbol}）股票拆细，除权日为{ex_date}。",
            )
        return (
            f"{name} announces a {split:g}-for-1 share split",
            f"{name} ({symbol}) shares split {split:g}-for-1; ex-date {ex_date}.",
        )
    parts_zh, parts_en = [], []
    if cash > 0:
        parts_zh.append(f"每10股派{10 * cash:.2f}元")
        parts_en.append(f"CNY {10 * cash:.2f} cash per 10 shares")
    if bonus > 0:
        parts_zh.append(f"每10股送转{10 * bonus:g}股")
        parts_en.append(f"{10 * bonus:g} bonus shares per 10 shares")
    if lang:
        return (
            f"{name}：权益分派实施公告（{'，'.join(parts_zh)}）",
            f"{name}（{symbol}）实施权益分派，除权除息日为{ex_date}。",
        )
    return (
        f"{name} announces profit distribution: {' and '.join(parts_en)}",
        f"{name} ({symbol}) will distribute {' and '.join(parts_en)}; ex-date {ex_date}.",
    )
