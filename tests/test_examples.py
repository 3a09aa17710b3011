"""The examples run as users run them (``make demo`` runs the chatbot)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import redis.cluster

from plain_redis_saver.embedded import _free_port

from .conftest import SAVER_PASSWORD, SAVER_USER, Backend
from .helpers import config, put_chain

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run_example(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python examples/<name>.py`` as a user runs it, with ``env`` as its environment."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_chatbot_demo_remembers_the_name_per_thread(backend: Backend) -> None:
    if backend.url is None:
        pytest.skip("the demo connects by URL; fakeredis has none")
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    env["REDIS_URL"] = backend.url
    run = _run_example("chatbot_functional", env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Your name is Bob." in run.stdout and "I don't know your name yet." in run.stdout


def test_chatbot_demo_against_a_server_that_is_down_says_so_in_one_line() -> None:
    url = f"redis://user:secret@127.0.0.1:{_free_port()}/0"  # nothing listens there
    run = _run_example("chatbot_functional", {**os.environ, "REDIS_URL": url})
    lines = run.stderr.strip().splitlines()
    assert run.returncode != 0 and len(lines) == 1, run.stderr
    assert "Cannot reach REDIS_URL=redis://user:***@127.0.0.1:" in lines[0]
    assert "run without REDIS_URL" in lines[0] and "secret" not in run.stdout + run.stderr


def _load(name: str) -> types.ModuleType:
    """An example file imported as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so that typing can resolve the module's annotations
    spec.loader.exec_module(module)
    return module


def test_stategraph_hitl_waits_for_approval_before_the_tool(backend: Backend) -> None:
    if backend.url is None:
        pytest.skip("the example connects by URL; fakeredis has none")
    run = _run_example("stategraph_hitl", {**os.environ, "REDIS_URL": backend.url})
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "[hitl-approve] paused for review: refund_order" in out
    assert "Refunded $30.00 for order 42." in out
    assert "The reviewer rejected this ('too much')." in out
    assert "OK: ledger ['refund 42 30.00']" in out
    # The pause happened before the approval was even given (printed in that order).
    assert out.index("paused for review") < out.index("reviewer: approve")


def test_fastapi_server_keeps_threads_in_redis(backend: Backend, prefix: str) -> None:
    if backend.url is None:
        pytest.skip("the server connects by URL; fakeredis has none")
    from fastapi.testclient import TestClient

    server = _load("fastapi_server")
    with TestClient(server.create_app(backend.url, key_prefix=prefix)) as http:
        first = http.post("/threads/alice/messages", json={"content": "hi! I'm alice"})
        assert first.status_code == 200, first.text
        assert first.json() == {
            "thread_id": "alice",
            "reply": {"role": "assistant", "content": "Hi Alice!"},
            "messages": 2,
        }
        other = http.post("/threads/bob/messages", json={"content": "what's my name?"})
        assert other.json()["reply"]["content"] == "I don't know your name yet."
        assert http.post("/threads/alice/messages", json={"content": ""}).status_code == 422
        assert http.get("/threads/nobody/messages").status_code == 404
    # A new app (new saver, new connection pool) finds the thread where it was left.
    with TestClient(server.create_app(backend.url, key_prefix=prefix)) as http:
        again = http.post("/threads/alice/messages", json={"content": "what's my name?"})
        assert again.json()["reply"]["content"] == "Your name is Alice."
        assert again.json()["messages"] == 4
        listed = http.get("/threads/alice/messages")
        assert listed.status_code == 200
        assert [m["role"] for m in listed.json()] == ["user", "assistant"] * 2
        assert listed.json()[0]["content"] == "hi! I'm alice"


def test_elasticache_example_on_the_local_cluster(backend: Backend, prefix: str) -> None:
    if not backend.is_cluster:
        pytest.skip("the example needs a cluster-mode server")
    example = _load("elasticache")
    minted: list[str] = []

    def fake_token(user: str) -> str:  # the cluster test user's password stands in
        minted.append(user)
        return SAVER_PASSWORD

    port = backend.server.ports[0]  # type: ignore[union-attr]
    saver = example.make_saver(
        "127.0.0.1", port, SAVER_USER, tls=False, token_provider=fake_token, key_prefix=prefix
    )
    try:
        assert isinstance(saver.client, redis.cluster.RedisCluster)
        saver.setup()
        example.smoke_test(saver)
        stored = put_chain(saver, "iam", 2)
        assert saver.get_tuple(stored[-1]) is not None
        assert len(list(saver.list(config("iam")))) == 2
    finally:
        saver.client.close()
    assert minted and set(minted) == {SAVER_USER}


def test_elasticache_example_runs_on_a_local_cluster_without_aws() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELASTICACHE_")}
    run = _run_example("elasticache", env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "local Valkey cluster" in run.stdout
    assert "state: {'steps': ['start', 'worked']}" in run.stdout


def test_elasticache_example_options_and_token_refresh() -> None:
    example = _load("elasticache")
    minted: list[str] = []
    credentials = example.IamTokenCredentials(
        "user", lambda user: minted.append(user) or f"token-{len(minted)}", lifetime=3600
    )
    assert credentials.get_credentials() == ("user", "token-1")
    assert credentials.get_credentials() == ("user", "token-1")  # cached
    credentials.lifetime = 0
    assert credentials.get_credentials() == ("user", "token-2")  # expired: minted again
    options = example.cluster_options("host", 6379, credentials, tls=True, ca_cert="ca.pem")
    assert options["ssl"] is True and options["ssl_cert_reqs"] == "required"
    assert options["ssl_ca_certs"] == "ca.pem" and options["credential_provider"] is credentials
    assert "ssl" not in example.cluster_options("host", 6379, credentials, tls=False)
    assert example.mint_iam_token("u", "cache", "eu-west-1").startswith("fake-iam-token:")


def test_cross_thread_memory_recalls_a_users_facts_in_a_new_thread(backend: Backend) -> None:
    if backend.url is None:
        pytest.skip("the example connects by URL; fakeredis has none")
    run = _run_example("cross_thread_memory", {**os.environ, "REDIS_URL": backend.url})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "-> 'I remember: I like green tea" in run.stdout
    assert "[bob / thread 3] 'What tea do I like?' -> 'I know nothing about you yet.'" in run.stdout
