"""Tests that cannot run on this machine skip here, but fail on CI (`CI=true`), where every test must run:
a missing dependency or permission there is a broken CI set-up, not a reason to pass quietly.

Only for "cannot run here"; an opt-in test (e.g. the soak, which runs only when SOAK_SECONDS asks for it)
keeps its plain `pytest.mark.skipif`.
"""

import importlib
import os
from types import ModuleType


def in_ci() -> bool:
    """True when the CI variable says so (`CI=true`, as CI services set it; also 1 or yes)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip the calling test, fixture or module unless `condition`; under CI=true fail instead. Prefer a
    (module-scoped, autouse) fixture to module level: there a CI failure is a collection error, which
    stops the whole run instead of failing the module's tests."""
    if condition:
        return
    import pytest

    if in_ci():
        pytest.fail(f"{reason} (CI=true: a test that cannot run fails instead of skipping)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_module(name: str, reason: str) -> ModuleType:
    """`pytest.importorskip` under the same rule: the module, or a skip (a failure under CI=true)."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        missing = err
    require(False, f"{reason}: {missing}")
    raise missing  # not reached: require raised
