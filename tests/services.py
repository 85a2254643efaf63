"""The machine's PostgreSQL and Redis (DESIGN.md section 3) for production-mode tests: where to
reach them, and why a test must skip when they cannot be reached."""

from __future__ import annotations

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_USERS = ("postgres", "root")  # trust auth: whichever role exists
REDIS_URL = "redis://127.0.0.1:6379/0"


def postgres_user() -> str | None:
    """The first role of POSTGRES_USERS that may create databases, or None."""
    import psycopg2

    for user in POSTGRES_USERS:
        try:
            conn = postgres_connection(user, "postgres")
        except psycopg2.Error:
            continue
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = %s", (user,)
                )
                if cur.fetchone()[0]:
                    return user
        finally:
            conn.close()
    return None


def postgres_connection(user: str, dbname: str):
    """A connection to `dbname` as `user`, in autocommit (CREATE/DROP DATABASE need it)."""
    import psycopg2

    conn = psycopg2.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user=user, dbname=dbname, connect_timeout=3
    )
    conn.autocommit = True
    return conn


def redis_reachable() -> bool:
    """Whether Redis answers at REDIS_URL."""
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except (redis.RedisError, OSError):
        return False


def missing_services(postgres: bool = True, redis: bool = True) -> str | None:
    """Why the asked-for services cannot be used here (the skip reason), or None."""
    missing = []
    if postgres and postgres_user() is None:
        missing.append(
            f"PostgreSQL on {POSTGRES_HOST}:{POSTGRES_PORT} (trust auth, a role among "
            f"{', '.join(POSTGRES_USERS)} that may create databases)"
        )
    if redis and not redis_reachable():
        missing.append(f"Redis at {REDIS_URL}")
    if not missing:
        return None
    return "production-mode test: no " + " and no ".join(missing) + " on this machine"
