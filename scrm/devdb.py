"""Local PostgreSQL and Redis for development and tests (not used in production).

``postgres_prepare()`` makes sure the ``scrm`` role (LOGIN CREATEDB, no SUPERUSER, no
BYPASSRLS, so row-level security binds it) and its database exist, and returns its URL, or
"" when PostgreSQL does not answer."""

import os

import psycopg2
from psycopg2 import sql

ROLE = "scrm"


def postgres_prepare(host: str = "", port: int = 0) -> str:
    host = host or os.environ.get("PGADMIN_HOST", "127.0.0.1")
    port = port or int(os.environ.get("PGADMIN_PORT", "5432"))
    admin_user = os.environ.get("PGADMIN_USER", "postgres")
    admin_password = os.environ.get("PGADMIN_PASSWORD")
    try:
        conn = psycopg2.connect(host=host, port=port, user=admin_user, dbname="postgres",
                                password=admin_password, connect_timeout=3)
    except psycopg2.OperationalError:
        return ""
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS")
                           .format(sql.Identifier(ROLE)))
        if os.environ.get("SCRM_DB_PASSWORD"):
            cursor.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(ROLE)),
                           [os.environ["SCRM_DB_PASSWORD"]])
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [ROLE])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(ROLE), sql.Identifier(ROLE)))
    conn.close()
    return f"postgres://{ROLE}@{host}:{port}/{ROLE}"


def redis_available(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


if __name__ == "__main__":
    print(postgres_prepare() or "PostgreSQL not reachable")  # noqa: T201
