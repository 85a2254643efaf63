"""The API process's own store work done off its event loop: audit rows and key records go
through the store agent's child process; a key revoked by another process stops working within
`key_recheck_s` while requests keep finding their keys in memory (the refresher re-reads them);
requests missing a key together read it once; a dead child is replaced. Real chDB store."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from api_test_store import DATABASE, api_config, build

from quant_assets.api.app import build_services
from quant_assets.api.audit import AuditRow
from quant_assets.api.keys import KeyStore, NotRemembered, parse_key
from quant_assets.api.store import Store
from quant_assets.api.store_agent import AgentError
from resources.cache import CacheResource

RECHECK_S = 2.0


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("api_agent"))


@pytest.fixture
def services(built):
    services = build_services(api_config(built, key_recheck_s=RECHECK_S))
    try:
        yield services
    finally:
        services.keys.stop()
        services.agent.close()
    assert services.agent.pid is None


def elsewhere(built) -> KeyStore:
    """The key store of another process: its cache generations are not this one's, so its
    changes reach the API only through the table."""
    store = Store(built.dsn, DATABASE, wait_s=20)
    return KeyStore(store, CacheResource(prefix="elsewhere"), "api_keys", "pepper", RECHECK_S)


def test_audit_rows_and_key_records_go_through_the_child(services):
    record, key = services.keys.create("agent", "read", 1)
    assert services.keys.verify(*parse_key(key)).key_id == record.key_id
    assert services.agent.pid not in (None, os.getpid())
    rows = [
        AuditRow(time.time(), f"agent{i:04d}", record.key_id, "GET", "/v1/x", "{}", 200, 1.0, "t")
        for i in range(3)
    ]
    for row in rows:
        services.audit.record(row)
    calls = services.agent.calls
    assert services.audit.flush() and services.audit.pending == 0
    assert services.agent.calls == calls + 1  # one insert for the batch
    with services.store.client() as client:
        found = services.store.query(
            client, "SELECT count() AS n FROM {db}.api_audit WHERE request_id LIKE 'agent%'"
        )
    assert int(found["n"].iloc[0]) == 3


def test_a_key_revoked_elsewhere_is_refused_within_recheck_s(built, services):
    other = elsewhere(built)
    _, key = other.create("leaver", "read", 1)
    key_id, secret = parse_key(key)
    assert services.keys.verify(key_id, secret) is not None
    services.keys.start()
    assert other.revoke(key_id)
    revoked = time.monotonic()
    while True:
        try:
            found = services.keys.verify(key_id, secret, wait=False)
        except NotRemembered:  # the refresher fell behind: the request path reads it
            found = services.keys.verify(key_id, secret)
        if found is None:
            break
        assert time.monotonic() - revoked < RECHECK_S + 1.0, "still accepted after recheck_s"
        time.sleep(0.02)


def test_requests_missing_a_key_together_read_it_once(services):
    _, key = services.keys.create("crowd", "read", 1)  # forgets the key's record
    key_id, secret = parse_key(key)
    services.agent.call("keys", key_ids=[])  # the child started
    calls = services.agent.calls
    with ThreadPoolExecutor(16) as pool:
        found = list(pool.map(lambda _: services.keys.verify(key_id, secret), range(16)))
    assert all(f is not None and f.key_id == key_id for f in found)
    assert services.agent.calls == calls + 1


def test_a_dead_child_is_replaced_and_errors_come_back(services):
    assert services.agent.call("keys", key_ids=[]) == []
    first = services.agent.pid
    os.kill(first, signal.SIGKILL)
    time.sleep(0.2)
    assert services.agent.call("keys", key_ids=[]) == []
    assert services.agent.pid not in (None, first)
    with pytest.raises(AgentError, match="KeyError"):
        services.agent.call("no-such-operation")
