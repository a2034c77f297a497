"""Root pytest configuration shared by the core's and the adapters' tests.

- Hypothesis: the ``ci`` profile (no deadline, a fixed example budget, derandomised so a run
  is reproducible, the failing example's seed printed) is active under ``CI``; ``dev`` runs
  more examples locally. Choose with ``HYPOTHESIS_PROFILE``.
- Async tests run on both anyio backends, asyncio and trio.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "ci",
    deadline=None,
    max_examples=60,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=150,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on asyncio and on trio."""
    return str(request.param)


def postgres_dsn() -> str:
    """The PostgreSQL server tests use (``OMNILINK_TEST_POSTGRES_DSN`` overrides)."""
    return os.environ.get("OMNILINK_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
