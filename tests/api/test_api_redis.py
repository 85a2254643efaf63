"""The rate limiter, the cache and key revocation on the machine's Redis (127.0.0.1:6379):
counters shared by every API process, 429 with Retry-After over the limit, and a revocation
made in one process seen at once by another. Skips when Redis does not answer."""

from __future__ import annotations

import secrets

import pytest
from api_test_store import api_config, build
from fastapi.testclient import TestClient
from services import REDIS_URL, redis_reachable

from quant_assets.api.app import create_app
from quant_assets.api.rate_limit import LocalRateLimiter, RedisRateLimiter

pytestmark = pytest.mark.skipif(
    not redis_reachable(), reason=f"no Redis answers at {REDIS_URL} (DESIGN.md section 3)"
)


def test_redis_counters_are_shared_and_reset_with_the_window():
    prefix = f"apitest{secrets.token_hex(4)}"
    one = RedisRateLimiter(REDIS_URL, limit=3, prefix=prefix)
    two = RedisRateLimiter(REDIS_URL, limit=3, prefix=prefix)  # another API process
    now = 1_800_000_010.0  # 10 s into a window
    assert [one.hit("key:a", "/v1/x", now).allowed for _ in range(2)] == [True, True]
    assert two.hit("key:a", "/v1/x", now).allowed
    refused = two.hit("key:a", "/v1/x", now)
    assert not refused.allowed and refused.retry_after_s == 50 and refused.count == 4
    assert one.hit("key:b", "/v1/x", now).allowed  # per key
    assert one.hit("key:a", "/v1/y", now).allowed  # per route
    assert one.hit("key:a", "/v1/x", now + 60).allowed  # the next window
    local = LocalRateLimiter(limit=3)
    assert [local.hit("k", "/r", now).allowed for _ in range(4)] == [True, True, True, False]
    assert local.hit("k", "/r", now + 60).allowed


def test_unreachable_redis_lets_requests_through():
    limiter = RedisRateLimiter("redis://127.0.0.1:9/0", limit=1)
    assert all(limiter.hit("k", "/r").allowed for _ in range(3))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("api_redis"))


def test_the_api_on_redis_limits_caches_and_revokes_across_processes(built):
    config = api_config(built, redis_url=REDIS_URL, rate_limit_per_minute=4)
    first, second = create_app(config), create_app(api_config(built, redis_url=REDIS_URL))
    with TestClient(first) as a, TestClient(second) as b:
        services = first.state.services
        record, key = services.keys.create("redis-desk", "read", 90)
        headers = {"X-API-Key": key}
        assert a.get("/v1/factors", headers=headers).status_code == 200
        reads = services.store.reads
        assert a.get("/v1/factors", headers=headers).status_code == 200
        assert services.store.reads == reads  # the cache on Redis answered
        assert [a.get("/v1/factors", headers=headers).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]
        over = a.get("/v1/factors", headers=headers)
        assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 1
        # the other app (another process's view) knows the key, then sees its revocation
        assert b.get("/v1/positions", headers=headers).status_code == 200
        assert services.keys.revoke(record.key_id)
        assert b.get("/v1/positions", headers=headers).status_code == 401
