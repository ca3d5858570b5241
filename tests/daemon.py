"""A muslind process inside a lab host, for tests that drive it like a user would:
the real `docker` CLI, docker-py, raw HTTP over the unix socket."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
from typing import Any

from lab import Lab, LabHost, wait_until

MUSLIND = os.path.join(os.path.dirname(sys.executable), "muslind")


def socket_answers(path: str) -> bool:
    """Whether something accepts connections on the unix socket at path."""
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class Muslind:
    """One daemon of a lab host; `start()`/`stop()` can be called again (restart)."""

    def __init__(self, lab: Lab, host: LabHost, config: dict[str, Any] | None = None,
                 extra_args: list[str] | None = None) -> None:
        self.lab = lab
        self.host = host
        self.socket = host.socket
        self.config_file = os.path.join(host.dir, "daemon.json")
        with open(self.config_file, "w") as f:
            json.dump(config or {}, f)
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def argv(self) -> list[str]:
        return [MUSLIND, "--config-file", self.config_file, "--data-root",
                self.host.state_dir, "--exec-root", self.host.run_dir, "--host",
                f"unix://{self.socket}", "--prefix", self.host.prefix, *self.extra_args]

    @property
    def env(self) -> dict[str, str]:
        """The environment for the docker CLI (and docker-py's from_env)."""
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}",
                "DOCKER_CONFIG": os.path.join(self.host.dir, "docker-config")}

    def start(self) -> Muslind:
        self.proc = self.lab.spawn(self.host, self.argv)
        wait_until(self.answers, timeout=30, what="muslind to answer /_ping")
        return self

    def answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"muslind exited with {self.proc.returncode}: "
                               + self.log()[-2000:])
        try:
            return self.request("GET", "/_ping")[0] == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None

    def log(self) -> str:
        assert self.proc is not None
        with open(self.proc.lab_log) as f:  # type: ignore[attr-defined]
            return f.read()

    def request(self, method: str, path: str, body: Any = None, *,
                raw: bytes | None = None) -> tuple[int, Any]:
        conn = UnixHTTPConnection(self.socket)
        try:
            data = raw if raw is not None else (json.dumps(body).encode()
                                                if body is not None else None)
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read()
            try:
                return resp.status, json.loads(text) if text.strip() else None
            except ValueError:
                return resp.status, text.decode(errors="replace")
        finally:
            conn.close()

    def docker(self, *args: str, check: bool = True, input: str | None = None
               ) -> subprocess.CompletedProcess[str]:
        """The real docker CLI against this daemon (runs in the root namespace; only the
        unix socket is shared)."""
        return subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True,
                              check=check, timeout=60, input=input)
