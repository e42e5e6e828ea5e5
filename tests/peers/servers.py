"""Start and stop the real peers the integration tests (and ``cac demo``) talk to.

Each server runs on loopback, on a free port chosen here, in a fresh temporary folder, as a child
process stopped by its PID (TERM, then KILL after a grace period). Start-up waits for a readiness
check with a deadline and raises :class:`PeerStartError` carrying the server's log tail when the
deadline passes: a missing or broken server fails loudly, it is never skipped.

- :class:`OrthancServer`: the PACS, Orthanc 1.10 with only the DICOMweb plugin (the GDCM plugin
  crashes Orthanc on JPEG 2000 requests; see ``/work/shared/reference/peers.md``).
- :class:`FHIRServer`: the EHR, Medplum's FHIR router behind ``fhir-server.mjs`` (Node 20), which
  validates every resource it stores and can inject faults (503 for N requests, refuse transaction
  Bundles).
- :class:`RedisServer`: the Celery broker, optionally append-only so a restart loses nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import requests

PEERS_DIR = Path(__file__).resolve().parent
ORTHANC_DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
INSTALL_HINT = (
    "install the test peers: apt-get install -y orthanc orthanc-dicomweb redis-server "
    "&& (cd tests/peers && npm ci)  (or run scripts/bootstrap --test)"
)


class PeerStartError(RuntimeError):
    """Raised when a peer server is not installed, exits early, or is not ready by its deadline.

    The message names the server, the command and the last lines of its log. Fix: install the
    peer (see :data:`INSTALL_HINT`), free the port, or read the log tail for the server's own
    complaint.
    """


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class _Process:
    """A child server process with a log file, a readiness check and a clean stop."""

    name = "server"

    def __init__(self, workdir: Path | None = None) -> None:
        self._own_workdir = workdir is None
        self.workdir = (
            Path(tempfile.mkdtemp(prefix=f"cac-{self.name}-")) if workdir is None else workdir
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._command: list[str] = []

    def _spawn(self, command: Sequence[str], cwd: Path | None = None) -> None:
        executable = shutil.which(command[0]) or (command[0] if Path(command[0]).exists() else None)
        if executable is None:
            raise PeerStartError(f"{self.name}: {command[0]!r} is not installed; {INSTALL_HINT}")
        self._command = list(command)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self._command,
            cwd=cwd or self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

    def _wait_ready(self, check: Callable[[], bool], deadline_s: float) -> None:
        start = time.monotonic()
        while time.monotonic() - start < deadline_s:
            if self.process is not None and self.process.poll() is not None:
                raise PeerStartError(
                    f"{self.name} exited with status {self.process.returncode} while starting "
                    f"({' '.join(self._command)}); log tail:\n{_tail(self.log_path)}"
                )
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.05)
        self.stop()
        raise PeerStartError(
            f"{self.name} not ready after {deadline_s:.0f} s ({' '.join(self._command)}); "
            f"log tail:\n{_tail(self.log_path)}"
        )

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the server (a crash, for fault tests)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, grace_s: float = 10.0) -> None:
        """TERM the server by PID, wait up to ``grace_s``, then KILL it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def cleanup(self) -> None:
        """Stop the server and remove its folder (when this object created it)."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log_path, lines)


class OrthancServer(_Process):
    """Orthanc with the DICOMweb plugin, HTTP basic auth and its own storage folder.

    Attributes
    ----------
    url
        Orthanc's REST base, e.g. ``http://127.0.0.1:PORT``.
    dicomweb_url
        The DICOMweb base, ``{url}/dicom-web``.
    auth
        ``(user, password)`` for HTTP basic authentication.
    """

    name = "orthanc"

    def __init__(
        self, workdir: Path | None = None, user: str = "cac", password: str = "cac-test"
    ) -> None:
        super().__init__(workdir)
        self.auth = (user, password)
        self.http_port = 0
        self.url = ""
        self.dicomweb_url = ""

    def start(self, deadline_s: float = 20.0) -> OrthancServer:
        if not ORTHANC_DICOMWEB_PLUGIN.exists():
            raise PeerStartError(
                f"orthanc: DICOMweb plugin {ORTHANC_DICOMWEB_PLUGIN} missing; {INSTALL_HINT}"
            )
        if self.http_port == 0:
            self.http_port = free_port()
            self._dicom_port = free_port()
        config = {
            "Name": "CAC-TEST-PACS",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self._dicom_port,
            "DicomServerEnabled": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {self.auth[0]: self.auth[1]},
            "RemoteAccessAllowed": False,
            "HttpTimeout": 60,
            "StableAge": 1,
            "Plugins": [str(ORTHANC_DICOMWEB_PLUGIN)],
            "DicomWeb": {
                "Enable": True,
                "Root": "/dicom-web/",
                "Host": f"127.0.0.1:{self.http_port}",
                "Ssl": False,
            },
        }
        config_path = self.workdir / "orthanc.json"
        config_path.write_text(json.dumps(config, indent=2))
        self._spawn(["Orthanc", str(config_path)])
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.dicomweb_url = f"{self.url}/dicom-web"
        self._wait_ready(
            lambda: (
                requests.get(f"{self.url}/system", auth=self.auth, timeout=1).status_code == 200
            ),
            deadline_s,
        )
        return self

    def upload_files(self, paths: Sequence[Path]) -> list[str]:
        """POST each DICOM file to ``/instances``; return Orthanc's instance ids."""
        ids: list[str] = []
        with requests.Session() as session:
            session.auth = self.auth
            for path in paths:
                response = session.post(
                    f"{self.url}/instances",
                    data=Path(path).read_bytes(),
                    headers={"Content-Type": "application/dicom"},
                    timeout=30,
                )
                response.raise_for_status()
                ids.append(str(response.json()["ID"]))
        return ids

    def upload_folder(self, folder: Path) -> list[str]:
        """Upload every file under ``folder`` (sorted by name)."""
        return self.upload_files(sorted(p for p in Path(folder).rglob("*") if p.is_file()))


class FHIRServer(_Process):
    """The Node FHIR R4 server of ``fhir-server.mjs`` (Medplum router, in-memory, validating).

    Attributes
    ----------
    base_url
        The FHIR base, e.g. ``http://127.0.0.1:PORT/fhir/R4``.
    """

    name = "fhir"

    def __init__(self, workdir: Path | None = None) -> None:
        super().__init__(workdir)
        self.port = 0
        self.url = ""
        self.base_url = ""

    def start(self, deadline_s: float = 30.0) -> FHIRServer:
        script = PEERS_DIR / "fhir-server.mjs"
        if not (PEERS_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
            raise PeerStartError(f"fhir: {PEERS_DIR}/node_modules is missing; {INSTALL_HINT}")
        if self.port == 0:
            self.port = free_port()
        self._spawn(["node", str(script), "--port", str(self.port)], cwd=PEERS_DIR)
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/fhir/R4"
        self._wait_ready(
            lambda: requests.get(f"{self.url}/__admin/stats", timeout=1).status_code == 200,
            deadline_s,
        )
        return self

    def inject_faults(
        self,
        status: int = 503,
        count: int = 0,
        methods: Sequence[str] | None = None,
        refuse_transactions: bool = False,
    ) -> None:
        """Answer the next ``count`` requests (of ``methods``) with ``status``; or refuse
        transaction Bundles with 501."""
        body: dict[str, Any] = {
            "status": status,
            "count": count,
            "refuseTransactions": refuse_transactions,
        }
        if methods is not None:
            body["methods"] = list(methods)
        requests.post(f"{self.url}/__admin/faults", json=body, timeout=5).raise_for_status()

    def clear_faults(self) -> None:
        requests.delete(f"{self.url}/__admin/faults", timeout=5).raise_for_status()

    def stats(self) -> dict[str, int]:
        response = requests.get(f"{self.url}/__admin/stats", timeout=5)
        response.raise_for_status()
        return dict(response.json())


class RedisServer(_Process):
    """``redis-server`` on a free loopback port; ``durable=True`` turns on the append-only file
    (fsync always) so a restart keeps every queued message."""

    name = "redis"

    def __init__(self, workdir: Path | None = None, durable: bool = False) -> None:
        super().__init__(workdir)
        self.durable = durable
        self.port = 0
        self.url = ""

    def start(self, deadline_s: float = 10.0) -> RedisServer:
        if self.port == 0:
            self.port = free_port()
        command = [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--dir",
            str(self.workdir),
            "--daemonize",
            "no",
            "--appendonly",
            "yes" if self.durable else "no",
        ]
        if self.durable:
            command += ["--appendfsync", "always"]
        self._spawn(command)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._wait_ready(self._ping, deadline_s)
        return self

    def _ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def restart(self, deadline_s: float = 10.0) -> None:
        """Stop (TERM) and start again on the same port and folder."""
        self.stop()
        self.start(deadline_s)


@contextlib.contextmanager
def running(server: _Process, **start_kwargs: Any) -> Iterator[Any]:
    """Start ``server``, yield it, stop it and remove its folder on exit."""
    try:
        server.start(**start_kwargs)  # type: ignore[attr-defined]
        yield server
    finally:
        server.cleanup()
