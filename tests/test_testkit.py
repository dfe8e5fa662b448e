"""testkit's rule for tests that cannot run here (testing/src/testkit/ci.py): a skip on a developer's
machine, a failure under CI=true, in a test, a fixture or at module level; run in a child pytest."""

import os
import subprocess
import sys

import pytest

CASES = """
import pytest
from testkit import require, require_module

@pytest.fixture
def widget():
    require(False, "no widget on this machine")

def test_in_a_test():
    require(False, "no tmpfs on this machine")

def test_in_a_fixture(widget):
    pass

def test_a_missing_module():
    require_module("testkit_no_such_module", "a training-only dependency")

def test_that_can_run():
    require(True, "never shown")
"""

AT_MODULE_LEVEL = """
from testkit import require_module
require_module("testkit_no_such_module", "a training-only dependency")

def test_never_collected():
    pass
"""


def _pytest(folder, source: str, ci: str | None) -> subprocess.CompletedProcess:
    (folder / "test_cases.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": ci} if ci is not None else {})
    command = [sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", "test_cases.py"]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_a_test_that_cannot_run_skips_on_a_developer_machine(tmp_path, ci):
    done = _pytest(tmp_path, CASES, ci)
    assert done.returncode == 0, done.stdout
    assert "1 passed, 3 skipped" in done.stdout, done.stdout


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_it_fails_instead(tmp_path, ci):
    done = _pytest(tmp_path, CASES, ci)
    assert done.returncode == 1, done.stdout
    assert "2 failed, 1 passed, 1 error" in done.stdout, done.stdout
    assert "CI=true: a test that cannot run fails instead of skipping" in done.stdout


def test_at_module_level_too(tmp_path):
    skipped = _pytest(tmp_path, AT_MODULE_LEVEL, None)
    assert skipped.returncode == 5 and "1 skipped" in skipped.stdout, skipped.stdout  # 5: nothing ran
    failed = _pytest(tmp_path, AT_MODULE_LEVEL, "true")
    assert failed.returncode != 0 and "1 error" in failed.stdout, failed.stdout
    assert "testkit_no_such_module" in failed.stdout
