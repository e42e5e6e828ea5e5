"""The outbox hand-off to a real Redis broker, including a crash between commit and enqueue."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from sqlalchemy import Engine

from fhir_service.mapping.service_request import parse_service_request
from fhir_service.outbox import Dispatcher, backoff_s
from fhir_service.queue import PROCESS_ORDER_TASK, create_celery
from fhir_service.settings import DEFAULT_ORDER_CODES, Settings
from fhir_service.storage import OrderStore, OutboxStore, make_engine
from tests.fhir_service.conftest import service_request
from tests.peers.servers import RedisServer, free_port

CODES = frozenset((c.system, c.code) for c in DEFAULT_ORDER_CODES)


def accept_order(engine: Engine, number: int = 1) -> str:
    order = service_request(id=f"sr-{number}")
    order["identifier"][0]["value"] = f"ORD-{number}"
    intake = parse_service_request(order, accepted_codes=CODES, pacs_allowlist=())
    return OrderStore(engine).accept(intake).task.id


def queued_messages(url: str) -> list[dict[str, Any]]:
    """Celery messages waiting in the default queue, decoded (headers + args)."""
    client = redis.Redis.from_url(url)
    try:
        raw = client.lrange("celery", 0, -1)
    finally:
        client.close()
    messages = []
    for item in raw:
        envelope = json.loads(item)
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        messages.append(
            {"task": envelope["headers"]["task"], "id": envelope["headers"]["id"], "args": args}
        )
    return messages


@pytest.fixture
def redis_port(tmp_path: Path) -> int:
    return free_port()


@pytest.fixture
def start_redis(redis_port: int, tmp_path: Path) -> Iterator[Callable[[], RedisServer]]:
    servers: list[RedisServer] = []

    def start() -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}")
        (tmp_path / f"redis-{len(servers)}").mkdir(exist_ok=True)
        server.port = redis_port
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.cleanup()


def test_backoff_grows_and_is_capped() -> None:
    assert 0.8 <= backoff_s(0) <= 1.2
    assert 6.4 <= backoff_s(3) <= 9.6
    assert backoff_s(50) <= 300 * 1.2


class TestDispatcher:
    def test_sends_by_name_with_the_task_id_and_marks_dispatched(
        self, engine: Engine, settings: Settings, start_redis: Callable[[], RedisServer]
    ) -> None:
        server = start_redis()
        task_id = accept_order(engine)
        dispatcher = Dispatcher(engine, create_celery(replace(settings, broker_url=server.url)))
        assert dispatcher.run_once() == 1
        assert dispatcher.run_once() == 0
        assert queued_messages(server.url) == [
            {"task": PROCESS_ORDER_TASK, "id": f"order-{task_id}", "args": [task_id]}
        ]
        row = OutboxStore(engine).status(task_id)
        assert row is not None
        assert row["dispatched_at"] is not None

    def test_broker_down_is_retried_with_backoff_until_it_is_back(
        self,
        engine: Engine,
        settings: Settings,
        redis_port: int,
        start_redis: Callable[[], RedisServer],
    ) -> None:
        task_id = accept_order(engine)
        broker_url = f"redis://127.0.0.1:{redis_port}/0"
        dispatcher = Dispatcher(engine, create_celery(replace(settings, broker_url=broker_url)))
        started = time.monotonic()
        assert dispatcher.run_once() == 0
        assert time.monotonic() - started < 10, "a down broker must fail fast"
        row = OutboxStore(engine).status(task_id)
        assert row is not None
        assert row["dispatched_at"] is None
        assert row["attempts"] == 1
        assert row["last_error"]
        assert dispatcher.run_once() == 0  # not due yet: backing off
        start_redis()
        deadline = time.monotonic() + 5
        while dispatcher.run_once() == 0:
            assert time.monotonic() < deadline, "the order was not sent after the broker came back"
            time.sleep(0.2)
        assert [m["args"] for m in queued_messages(broker_url)] == [[task_id]]

    def test_leased_rows_are_not_given_to_a_second_dispatcher(self, engine: Engine) -> None:
        accept_order(engine, 1)
        accept_order(engine, 2)
        store = OutboxStore(engine)
        first = store.lease(limit=10)
        assert len(first) == 2
        assert store.lease(limit=10) == []
        store.mark_failed(first[0].id, "test", 0)
        assert [i.id for i in store.lease(limit=10)] == [first[0].id]


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", "1"]
    with log.open("ab") as handle:
        process = subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return process
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"cac serve did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def _wait(condition: Callable[[], bool], seconds: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


@pytest.mark.integration
@pytest.mark.slow
def test_order_accepted_while_broker_down_survives_a_crash(
    tmp_path: Path, redis_port: int, start_redis: Callable[[], RedisServer]
) -> None:
    """Accept (201) with the broker down, SIGKILL the whole service, restart: it is dispatched."""
    port = free_port()
    broker_url = f"redis://127.0.0.1:{redis_port}/0"
    env = dict(
        os.environ,
        CAC_AUTH_DISABLED="1",
        CAC_DATA_DIR=str(tmp_path / "var"),
        CAC_BROKER_URL=broker_url,
        CAC_DISPATCH_INTERVAL_MS="100",
        # no worker: the test reads the dispatched message from the queue itself
        CAC_EMBEDDED_WORKER="0",
    )
    for key in ("CAC_DATABASE_URL", "CAC_AUTO_MIGRATE"):
        env.pop(key, None)
    log = tmp_path / "serve.log"
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'service.sqlite'}")
    outbox = OutboxStore(engine)

    process = _serve(env, port, log)
    try:
        response = requests.post(
            f"http://127.0.0.1:{port}/fhir/ServiceRequest",
            data=json.dumps(service_request()),
            headers={"Content-Type": "application/fhir+json"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        task_id = response.json()["id"]
        _wait(
            lambda: bool((outbox.status(task_id) or {}).get("last_error")), 20, "a send failed", log
        )
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the service and its dispatcher, at once
        process.wait(timeout=10)
    row = outbox.status(task_id)
    assert row is not None
    assert row["dispatched_at"] is None

    start_redis()
    process = _serve(env, port, log)
    try:
        _wait(
            lambda: (outbox.status(task_id) or {}).get("dispatched_at") is not None,
            30,
            "the order was dispatched after the restart",
            log,
        )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        engine.dispose()
    assert queued_messages(broker_url) == [
        {"task": PROCESS_ORDER_TASK, "id": f"order-{task_id}", "args": [task_id]}
    ]
