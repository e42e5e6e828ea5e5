"""Accepted orders per second and latency of the FHIR service under gunicorn.

For SQLite (WAL, ``synchronous=FULL``) and PostgreSQL (``synchronous_commit=on``), both durable
commits, the script starts gunicorn with the real service (authentication on: RS384 bearer tokens
checked against a JWKS file), posts unique calcium-score orders from a threaded loopback load
generator and reports throughput and p50/p99 latency of the 201 answers. In the same run it
measures a bare Flask endpoint (parse the JSON, answer 201) under the same gunicorn settings, as
the baseline. Bounded in count (``--orders``) and time (``--seconds``).

    .venv/bin/python benchmarks/bench_service.py [--orders 3000] [--concurrency 4] [--workers 3]

Floors (issue 5): >= 300 orders/s and p99 < 50 ms with SQLite and with PostgreSQL.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

ROOT = Path(__file__).resolve().parent.parent
FLOOR_ORDERS_PER_S = 300.0
FLOOR_P99_MS = 50.0
ISSUER = "https://auth.bench.example"
AUDIENCE = "https://cac.bench.example/fhir"

#: The baseline: a bare Flask endpoint that parses the JSON body and answers 201.
bare_app = Flask("bare")


@bare_app.post("/bare")
def _bare() -> Response:
    body = json.loads(request.get_data())
    return Response(
        json.dumps({"resourceType": "Task", "id": body.get("id")}),
        201,
        mimetype="application/fhir+json",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def order(number: int, run: str) -> bytes:
    return json.dumps(
        {
            "resourceType": "ServiceRequest",
            "id": f"sr-{run}-{number}",
            "meta": {"versionId": "1"},
            "identifier": [
                {"system": "urn:oid:1.2.840.99999.1", "value": f"ORD-{run}-{number}"},
                {"system": "urn:dicom:uid", "value": f"urn:oid:1.2.840.99999.2.{number}"},
            ],
            "status": "active",
            "intent": "order",
            "code": {"coding": [{"system": "http://loinc.org", "code": "79087-3"}]},
            "subject": {"reference": f"Patient/bench-{number % 500}"},
        }
    ).encode()


def make_keys(folder: Path) -> tuple[Path, str]:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="bench", use="sig")
    path = folder / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    now = int(time.time())
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "exp": now + 3600, "iat": now,
         "scope": "system/ServiceRequest.c system/Task.rs"},
        key,
        algorithm="RS384",
        headers={"kid": "bench"},
    )  # fmt: skip
    return path, token


def start_gunicorn(
    app: str, port: int, workers: int, threads: int, env: dict[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "gthread",
        "--threads", str(threads),
        "--bind", f"127.0.0.1:{port}", "--no-control-socket", "--log-level", "warning",
        "--backlog", "2048", app,
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=cwd, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz" if "wsgi" in app else "/")
            connection.getresponse().read()
            connection.close()
            return process
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    stop(process)
    raise SystemExit(f"gunicorn for {app} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def load(
    port: int, path: str, bodies: list[bytes], token: str, concurrency: int, seconds: float
) -> dict[str, Any]:
    """Post every body once (closed loop, ``concurrency`` threads); latency of each answer."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    next_index = [0]
    deadline = time.monotonic() + seconds
    headers = {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {token}"}

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                index = next_index[0]
                next_index[0] += 1
            if index >= len(bodies):
                return
            started = time.perf_counter()
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("POST", path, body=bodies[index], headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
                connection.close()
            except OSError:
                status = 0
            elapsed = time.perf_counter() - started
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 201:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    latencies.sort()
    accepted = len(latencies)
    return {
        "sent": sum(statuses.values()),
        "accepted": accepted,
        "statuses": statuses,
        "per_s": accepted / wall if wall else 0.0,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * latencies[min(accepted - 1, int(0.99 * accepted))]
        if latencies
        else float("nan"),
    }


def postgres_database() -> tuple[str, Any]:
    import psycopg

    name = f"cac_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(
        "host=localhost port=5432 user=postgres dbname=postgres", autocommit=True
    )
    admin.execute(f'CREATE DATABASE "{name}"')
    sync = admin.execute("SHOW synchronous_commit").fetchone()
    print(f"  PostgreSQL synchronous_commit = {sync[0] if sync else '?'}")

    def drop() -> None:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return f"postgresql+psycopg://postgres@localhost:5432/{name}", drop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()

    from fhir_service.storage import make_engine, migrate

    print(f"bench_service: {args.orders} orders, concurrency {args.concurrency}, "
          f"gunicorn gthread {args.workers} workers x {args.threads} threads, "
          f"{os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    results: list[tuple[str, str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="cac-bench-") as tmp:
        folder = Path(tmp)
        jwks, token = make_keys(folder)
        base_env = dict(os.environ, PYTHONPATH=str(ROOT))
        # the baseline, once per backend so both sit beside it under the same machine load
        for backend in args.backends.split(","):
            cleanup = None
            if backend == "sqlite":
                url = f"sqlite:///{folder / 'bench.sqlite'}"
            elif backend == "postgresql":
                url, cleanup = postgres_database()
            else:
                raise SystemExit(f"unknown backend {backend!r}")
            engine = make_engine(url)
            migrate(engine)
            engine.dispose()
            env = dict(
                base_env,
                CAC_DATABASE_URL=url,
                CAC_DATA_DIR=str(folder),
                CAC_AUTO_MIGRATE="0",
                CAC_JWKS_FILE=str(jwks),
                CAC_TOKEN_ISSUER=ISSUER,
                CAC_TOKEN_AUDIENCE=AUDIENCE,
            )
            try:
                run = uuid.uuid4().hex[:6]
                bodies = [order(n, run) for n in range(args.orders)]
                warm = [order(n, run + "w") for n in range(100)]
                bare_port = free_port()
                bare = start_gunicorn(
                    "bench_service:bare_app",
                    bare_port,
                    args.workers,
                    args.threads,
                    base_env,
                    ROOT / "benchmarks",
                )
                try:
                    load(bare_port, "/bare", warm, token, args.concurrency, 10)
                    results.append(
                        (
                            backend,
                            "bare Flask",
                            load(bare_port, "/bare", bodies, token, args.concurrency, args.seconds),
                        )
                    )
                finally:
                    stop(bare)
                port = free_port()
                service = start_gunicorn(
                    "fhir_service.wsgi:app", port, args.workers, args.threads, env, ROOT
                )
                try:
                    load(port, "/fhir/ServiceRequest", warm, token, args.concurrency, 10)
                    results.append(
                        (
                            backend,
                            "POST ServiceRequest",
                            load(
                                port,
                                "/fhir/ServiceRequest",
                                bodies,
                                token,
                                args.concurrency,
                                args.seconds,
                            ),
                        )
                    )
                finally:
                    stop(service)
            finally:
                if cleanup:
                    cleanup()

    print(
        f"{'backend':<11} {'endpoint':<20} {'sent':>6} {'201':>6} {'per s':>8} "
        f"{'p50 ms':>7} {'p99 ms':>7}  vs bare"
    )
    ok = True
    bare_rate: dict[str, float] = {}
    for backend, name, r in results:
        if name == "bare Flask":
            bare_rate[backend] = r["per_s"]
            ratio = ""
        else:
            ratio = f"{r['per_s'] / bare_rate[backend]:.2f}x throughput"
            passed = r["per_s"] >= FLOOR_ORDERS_PER_S and r["p99_ms"] < FLOOR_P99_MS
            ok = ok and passed
            ratio += (
                "  "
                + ("PASS" if passed else "FAIL")
                + f" (floor >= {FLOOR_ORDERS_PER_S:.0f}/s, p99 < {FLOOR_P99_MS:.0f} ms)"
            )
        others = {k: v for k, v in r["statuses"].items() if k != 201}
        print(f"{backend:<11} {name:<20} {r['sent']:>6} {r['accepted']:>6} {r['per_s']:>8.0f} "
              f"{r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f}  {ratio}"
              f"{'  other statuses: ' + str(others) if others else ''}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
