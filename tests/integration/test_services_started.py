"""The harness really starts PostgreSQL and Redis (nothing is skipped when they are missing)."""

import pytest
import redis
import sqlalchemy as sa


@pytest.mark.postgres
def test_postgres_answers(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select current_setting('server_version_num')::int")).scalar_one() >= 150000
    engine.dispose()


@pytest.mark.redis
def test_redis_answers(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.ping() is True
    client.close()
