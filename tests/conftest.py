"""Shared fixtures: the CD7 protocol engine (built once), paths, and hypothesis profiles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from eligib import Engine

ROOT = Path(__file__).resolve().parent.parent
CD7 = ROOT / "protocols" / "cd7_car_t.elig"
EXAMPLES = ROOT / "protocols" / "examples"

HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=HEALTH)
settings.register_profile("deep", max_examples=2000, deadline=None, suppress_health_check=HEALTH)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
os.environ["SOURCE_DATE_EPOCH"] = "1796169600"  # 2026-12-02T00:00:00Z: check outputs say when they were made


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files from current output")
    parser.addoption("--update-docs", action="store_true", help="write current output into the docs' examples")


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The CLI's parse cache goes to a folder of this run, not the user's ~/.cache: a test run must
    neither read entries an earlier version wrote nor leave entries behind."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session", autouse=True)
def compiled_modules() -> None:
    """The suite starts `eligib` as a process hundreds of times. Where PYTHONDONTWRITEBYTECODE is set
    (as on the CI machines) each start would compile every module of the package again; compiling
    them once here (into the git-ignored __pycache__ folders) makes those starts what a user's are."""
    import compileall

    compileall.compile_dir(str(ROOT / "eligib"), quiet=1)


@pytest.fixture(scope="session")
def cd7() -> Engine:
    return Engine.from_file(str(CD7))


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")
