"""The examples run as users run them (``make demo`` runs the chatbot)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Backend

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_chatbot_demo_remembers_the_name_per_thread(backend: Backend) -> None:
    if backend.url is None:
        pytest.skip("the demo connects by URL; fakeredis has none")
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    env["REDIS_URL"] = backend.url
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "chatbot_functional.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Your name is Bob." in run.stdout and "I don't know your name yet." in run.stdout
