"""Fixtures shared by the Celery test modules."""
from __future__ import annotations

import pytest

from bot.queues.celery.parts import RedisServer, redis_binary


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    """A real redis-server of the module's own, on a free port (the test fails if it is missing)."""
    try:
        redis_binary()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
