"""Jobs: the whole daily pipeline, the history a model's windows need, and one day's ingest."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from quant_assets.calendar import TRADING_DAYS
from quant_assets.models.assets import DAILY_FAMILIES
from quant_assets.models.zoo import FAMILIES

DAILY_GROUPS = ("market", "quarantine", "factors", "models", "strategy", "reports")

# Everything that daily bars, corporate actions and news support: the history behind the
# windows of the screening, the model and the track record, without the intraday tables.
HISTORY_ASSETS = (
    "universe",
    "raw_daily_bars",
    "bars_quarantine",
    "raw_corporate_actions",
    "corporate_actions_quarantine",
    "raw_news",
    "news_quarantine",
    "adjustment_factors",
    "adjusted_bars",
    "labels",
    "news_items",
    "news_analysis",
    "daily_factor_values",
    "alpha158_values",
    "news_factor_values",
    "ai_factor_values",
)

# Families the daily run does not train (the networks by default): the zoo_training job's.
OFF_DAILY_MODELS = tuple(f"{f}_model" for f in FAMILIES if f not in DAILY_FAMILIES)

# What the daily retraining (16:00) trains: the daily families and their ensemble.
TRAINING_ASSETS = (*(f"{f}_model" for f in DAILY_FAMILIES), "ensemble_model")

daily_pipeline = define_asset_job(
    "daily_pipeline",
    selection=AssetSelection.groups(*DAILY_GROUPS) - AssetSelection.assets(*OFF_DAILY_MODELS),
    partitions_def=TRADING_DAYS,
    description="One trading day after its close: market data -> factors -> model -> "
    "predictions -> signals -> recommendations for the next trading day.",
)

daily_scoring = define_asset_job(
    "daily_scoring",
    selection=daily_pipeline.selection - AssetSelection.assets(*TRAINING_ASSETS),
    partitions_def=TRADING_DAYS,
    description="The daily pipeline scored by the champion in force, without training: the "
    "days between two retrainings of a backfill that retrains every few days.",
)

history_load = define_asset_job(
    "history_load",
    selection=AssetSelection.assets(*HISTORY_ASSETS),
    partitions_def=TRADING_DAYS,
    description="Daily bars, corporate actions, news and the factors and labels they give: "
    "the history the windows of the daily pipeline read (backfill it oldest first).",
)

zoo_training = define_asset_job(
    "zoo_training",
    selection=AssetSelection.assets(*(f"{f}_model" for f in FAMILIES)),
    partitions_def=TRADING_DAYS,
    description="Every family of the model zoo (CNN, LSTM and Transformer with the trees) "
    "trained and registered for a day, after the daily pipeline stored its factors.",
)

ai_factor_mining_job = define_asset_job(
    "ai_factor_mining_job",
    selection=AssetSelection.groups("ai_factors"),
    partitions_def=TRADING_DAYS,
    description="Rounds of AI factor mining on the window that ends on a day (the LLM when "
    "one is configured, else the offline search), and the admitted set the daily factor "
    "stage computes from then on.",
)

market_ingest = define_asset_job(
    "market_ingest",
    selection=AssetSelection.groups("market", "quarantine"),
    partitions_def=TRADING_DAYS,
    description="Validate and store one trading day of landing-zone files (the market stage).",
)

# The daily timeline's steps (quant_assets/automation/timeline.py); data preparation is the
# market_ingest job. Each is requested with only the assets that are missing or stale.
INFERENCE_ASSETS = ("predictions", "champion_live_ic")

factor_calculation = define_asset_job(
    "factor_calculation",
    selection=AssetSelection.groups("factors"),
    partitions_def=TRADING_DAYS,
    description="08:30: the factors of the last close from its stored market data.",
)

model_inference = define_asset_job(
    "model_inference",
    selection=AssetSelection.assets(*INFERENCE_ASSETS),
    partitions_def=TRADING_DAYS,
    description="09:00: the champion's scores of the last close (and its live rank IC).",
)

signal_generation = define_asset_job(
    "signal_generation",
    selection=AssetSelection.groups("strategy") | AssetSelection.assets("recommendations"),
    partitions_def=TRADING_DAYS,
    description="09:20: signals, the paper book's target and orders for the open, and the "
    "recommendations.",
)

performance_analysis = define_asset_job(
    "performance_analysis",
    selection=AssetSelection.groups(*DAILY_GROUPS)
    - AssetSelection.assets(*OFF_DAILY_MODELS, *TRAINING_ASSETS, "performance_report"),
    partitions_def=TRADING_DAYS,
    description="15:00: the day's chain once its market data are in, with the champion in "
    "force: factors, scores, the book valued at the close and its performance.",
)

report_generation = define_asset_job(
    "report_generation",
    selection=AssetSelection.assets("performance_report"),
    partitions_def=TRADING_DAYS,
    description="15:30: the day's performance page and figures in MLflow.",
)

model_retraining = define_asset_job(
    "model_retraining",
    selection=AssetSelection.assets(*TRAINING_ASSETS),
    partitions_def=TRADING_DAYS,
    description="16:00: the daily families and the ensemble trained on the window that ends "
    "on the day, registered, promoted when they beat the champion.",
)

TIMELINE_JOBS = (
    market_ingest,
    factor_calculation,
    model_inference,
    signal_generation,
    performance_analysis,
    report_generation,
    model_retraining,
)
