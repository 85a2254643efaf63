"""The market-data resource refuses a source it does not know, whether given or from the env."""

import pytest
from dagster import EnvVar, asset, materialize
from pydantic import ValidationError

from resources.market import KINDS, SOURCES, MarketDataResource


def test_an_unknown_source_names_the_known_ones():
    with pytest.raises(ValidationError, match="'simulate' is not one of simulated, landing"):
        MarketDataResource(source="simulate")
    assert {MarketDataResource(source=s).source for s in SOURCES} == set(SOURCES)


def test_a_source_from_the_environment_is_checked_when_dagster_resolves_it(monkeypatch):
    @asset
    def source(market: MarketDataResource) -> str:
        return market.source

    resources = {"market": MarketDataResource(source=EnvVar("QUANT_MARKET_SOURCE"))}
    monkeypatch.setenv("QUANT_MARKET_SOURCE", "landing")
    assert materialize([source], resources=resources).output_for_node("source") == "landing"
    monkeypatch.setenv("QUANT_MARKET_SOURCE", "simulate")
    with pytest.raises(Exception) as failed:
        materialize([source], resources=resources)
    root = failed.value
    while root.__cause__ is not None:
        root = root.__cause__
    assert "market source 'simulate' is not one of simulated, landing, baostock" in str(root)


def test_an_integer_setting_that_is_not_one_names_its_variable(monkeypatch, tmp_path):
    from resources import build_resources

    monkeypatch.setenv("QUANT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("QUANT_SIM_SYMBOLS", "3OO")
    with pytest.raises(ValueError, match="QUANT_SIM_SYMBOLS='3OO' is not an integer"):
        build_resources()


def test_the_kinds_a_market_delivers_always_include_bars():
    bars_only = MarketDataResource(source="landing", kinds="corporate_actions, bars")
    assert bars_only.delivered() == ("bars", "corporate_actions")
    assert bars_only.delivers("bars") and not bars_only.delivers("news")
    assert bars_only.not_delivered("bars") is None
    assert bars_only.not_delivered("trades", "order_book", "bars") == (
        "this market delivers no trades, order_book (its kinds: bars, corporate_actions; "
        "QUANT_MARKET_KINDS)"
    )
    assert MarketDataResource().delivered() == KINDS
    with pytest.raises(ValidationError, match="a market must deliver bars"):
        MarketDataResource(kinds="trades,news")
    with pytest.raises(ValidationError, match=r"unknown market data kinds \['ticks'\]"):
        MarketDataResource(kinds="bars,ticks")
    with pytest.raises(ValueError, match="unknown market data kind 'ticks'"):
        bars_only.delivers("ticks")


def test_market_kinds_from_the_environment_are_checked_before_any_run(monkeypatch, tmp_path):
    from resources.settings import SettingsError, check_environment

    monkeypatch.setenv("QUANT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("QUANT_MARKET_KINDS", "bars,tick")
    with pytest.raises(SettingsError, match="QUANT_MARKET_KINDS='bars,tick' is not allowed"):
        check_environment()
    monkeypatch.setenv("QUANT_MARKET_KINDS", "news,trades")
    with pytest.raises(SettingsError, match="a market must deliver bars"):
        check_environment()
    monkeypatch.setenv("QUANT_MARKET_KINDS", "bars, news")
    check_environment()
