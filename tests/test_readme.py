"""Every Python sample in the README runs as written (against the test server)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from .conftest import Backend

README = Path(__file__).resolve().parent.parent / "README.md"
SAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_readme_has_samples() -> None:
    assert len(SAMPLES) >= 3


@pytest.mark.parametrize("index", range(len(SAMPLES)))
def test_readme_sample_runs(backend: Backend, index: int, monkeypatch: pytest.MonkeyPatch) -> None:
    if backend.url is None:
        pytest.skip("README samples connect by URL; fakeredis has none")
    monkeypatch.setenv("REDIS_URL", backend.url)
    # A real module, so that typing can resolve the sample's annotations.
    module = types.ModuleType(f"readme_sample_{index}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(SAMPLES[index], f"README.md sample {index + 1}", "exec"), module.__dict__)


def test_every_acl_rule_in_the_readme_is_the_one_acl_rule_gives() -> None:
    from plain_redis_saver.acl import acl_rule

    lines = re.findall(r"^ACL SETUSER \S+ on >\S+ (.*)$", README.read_text(encoding="utf-8"), re.M)
    assert lines
    for line in lines:
        # A recipe may add its own rules (a database) after the saver's.
        assert line.startswith(acl_rule("lg")), line
