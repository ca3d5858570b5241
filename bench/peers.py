"""The systems compared: muslind (driven by the real docker CLI, and by the muslin CLI),
Debian's dockerd, and Podman with netavark. Each daemon runs in a network namespace of
its own with its own data, exec and run directories and socket; each CLI command runs
inside its peer's namespace too (setns in the child before exec: what `nsenter --net`
does, without its extra exec in the timed path, for every peer alike).

A peer whose binary is missing or that fails to start keeps a status saying why
("could not start: ..."), so that the report shows it instead of dropping it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench import host

REPO = Path(__file__).resolve().parent.parent
# muslind and the muslin CLI run from this checkout's sources with the bench's own
# interpreter (`python -m`, PYTHONPATH=src set by the suite): a worktree benches its code
PYTHON = sys.executable
# Every peer's namespace has the bench's stub DNS server (bench/dnsstub.py) on this
# address (on lo): containers' `--dns`, the daemons' `dns`, and the upstream in the
# run's /etc/resolv.conf (aardvark-dns forwards there) all point at it.
STUB_DNS = "192.0.2.53"
IMAGE = "busybox"
NOT_YET = "not supported yet"
T = TypeVar("T")


class PeerError(Exception):
    """A peer could not start or an operation failed; the message says why."""


_VERBS = {"network", "create", "rm", "ls", "connect", "disconnect", "run", "ps", "version",
          "info", "import", "system", "service", "inspect"}


@dataclass
class Cmd:
    argv: list[str]
    rc: int
    out: str
    err: str
    ms: float

    def shown(self) -> str:
        """The command as a reader knows it: `podman network create`, `docker run`."""
        argv = self.argv[2:] if self.argv[0] == "nsenter" else self.argv
        words = [os.path.basename(argv[0])]
        for a in argv[1:]:
            if a in _VERBS:
                words.append(a)
            elif len(words) > 1:
                break
        return " ".join(words)

    def check(self) -> Cmd:
        if self.rc != 0:
            msg = [ln for ln in (self.err.strip() or self.out.strip()).splitlines()
                   if ln.strip() and not ln.startswith("Run '")] or [f"exit {self.rc}"]
            if self.rc == 124 and msg[-1].startswith("timed out"):
                raise PeerError(f"`{self.shown()}` {msg[-1]}")
            raise PeerError(f"`{self.shown()}` exit {self.rc}: {msg[-1][:300]}")
        return self


@dataclass
class Context:
    """What all peers of one run share."""

    run_dir: Path
    run_id: str
    image_tar: Path
    log: Any = print
    docker_cli: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def cgroup_parent(self) -> str:
        return f"/muslin-bench-{self.run_id}"


def find_docker_cli() -> str:
    """The newest docker CLI on the machine (/usr/local/bin's v28 before Debian's)."""
    best = ""
    best_v: tuple[int, ...] = (-1,)
    for cand in ("/usr/local/bin/docker", "/usr/bin/docker", shutil.which("docker") or ""):
        if not cand or not os.access(cand, os.X_OK):
            continue
        try:
            r = subprocess.run([cand, "--version"], capture_output=True, text=True, timeout=20)
            v = tuple(int(x) for x in r.stdout.split()[2].rstrip(",").split(".")[:3]
                      if x.isdigit())
        except (OSError, subprocess.TimeoutExpired, IndexError, ValueError):
            continue
        if v > best_v:
            best, best_v = cand, v
    return best


def run_cmd(argv: Sequence[str], *, env: dict[str, str] | None = None,
            netns_fd: int | None = None, timeout: float = 180,
            stdin: str | None = None, threaded: bool = False) -> Cmd:
    """Runs a command (inside the namespace of netns_fd), timing it in milliseconds from
    before the fork to after the exit. Timed commands enter the namespace in the child
    before exec; `threaded` ones (untimed, run from worker threads, where a preexec_fn
    is unsafe) go through `nsenter --net=/proc/<us>/fd/<fd>` instead."""
    argv = list(argv)
    preexec = None
    if netns_fd is not None and threaded:
        argv = ["nsenter", f"--net=/proc/{os.getpid()}/fd/{netns_fd}", *argv]
    elif netns_fd is not None:
        fd = netns_fd

        def preexec() -> None:
            host.setns_net(fd)

    t = time.perf_counter()
    try:
        p = subprocess.run(argv, env=env, preexec_fn=preexec, capture_output=True, text=True,
                           timeout=timeout, input=stdin)
    except FileNotFoundError as e:
        return Cmd(argv, 127, "", f"{argv[0]}: not found ({e.strerror})", 0.0)
    except subprocess.TimeoutExpired:
        return Cmd(argv, 124, "", f"timed out after {timeout:.0f} s", timeout * 1000)
    ms = (time.perf_counter() - t) * 1000
    return Cmd(argv, p.returncode, p.stdout, p.stderr, ms)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def http_request(sock: str, method: str, path: str, body: Any = None,
                 timeout: float = 60) -> tuple[int, bytes, float]:
    """One request on a fresh connection: (status, body, milliseconds)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    t = time.perf_counter()
    conn = UnixHTTPConnection(sock, timeout)
    try:
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        payload = r.read()
    finally:
        conn.close()
    return r.status, payload, (time.perf_counter() - t) * 1000


def _tail(path: Path, n: int = 3) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " / ".join(ln.strip()[:200] for ln in lines[-n:])


class Peer:
    """One system under comparison."""

    id = "peer"
    label = "peer"
    compare = True          # gets a ratio column (muslin / this peer)
    network_cli = True      # network create/rm/ls through a CLI
    api = True              # Engine API over a unix socket

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.dir = ctx.run_dir / self.id
        self.ns_path = ctx.run_dir / "ns" / self.id
        self.status = "not started"
        self.version = ""
        self.containers = NOT_YET
        self.api_status = "n/a"
        self._ns_fd: int | None = None
        self._procs: list[subprocess.Popen[bytes]] = []

    # -- lifecycle --
    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def start(self) -> None:
        """Starts the peer; on failure records "could not start: <reason>"."""
        try:
            self._start()
            self.status = "ok"
        except (PeerError, OSError) as e:
            self.status = f"could not start: {e}"
        self.ctx.log(f"bench: {self.label}: {self.status}"
                     + (f" ({self.version})" if self.version else ""))

    def _start(self) -> None:
        raise NotImplementedError

    def make_netns(self) -> None:
        from muslin.kernel import netns

        self.ns_path.parent.mkdir(parents=True, exist_ok=True)
        if not netns.is_netns(str(self.ns_path)):
            netns.create(str(self.ns_path))
        self._ns_fd = os.open(self.ns_path, os.O_RDONLY | os.O_CLOEXEC)
        # lo up, as in any machine's namespace (Docker and Podman expect it)
        run_cmd(["ip", "link", "set", "lo", "up"], netns_fd=self._ns_fd).check()
        run_cmd(["ip", "addr", "add", f"{STUB_DNS}/32", "dev", "lo"],
                netns_fd=self._ns_fd).check()
        self.spawn([PYTHON, "-m", "bench.dnsstub", "--listen", STUB_DNS,
                    "--ready", str(self.dir / "stub.ready")], "stub.log")
        deadline = time.monotonic() + 30
        while not (self.dir / "stub.ready").exists():
            if time.monotonic() > deadline:
                raise PeerError("the stub DNS server did not start: "
                                f"{_tail(self.dir / 'stub.log')}")
            time.sleep(0.05)

    def spawn(self, argv: list[str], log_name: str, env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        """Starts a long-running process inside the peer's namespace through nsenter, in
        a session of its own (a terminal's Ctrl-C reaches the bench, not the daemons)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        log = open(self.dir / log_name, "ab")  # noqa: SIM115 - handed to the child
        try:
            p = subprocess.Popen(["nsenter", f"--net={self.ns_path}", *argv], stdout=log,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=env, start_new_session=True)
        finally:
            log.close()
        self._procs.append(p)
        return p

    def stop(self) -> list[str]:
        """Stops what the peer started; returns problems worth reporting."""
        problems: list[str] = []
        with contextlib.suppress(Exception):
            problems += self._cleanup()
        for p in reversed(self._procs):
            if p.poll() is None:
                killed = host.end_processes([p.pid], grace=20)
                problems += [f"{self.id}: needed SIGKILL: {k}" for k in killed]
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
        if self._ns_fd is not None:
            os.close(self._ns_fd)
            self._ns_fd = None
        return problems

    def _cleanup(self) -> list[str]:
        return []

    # -- operations (each returns a Cmd whose .ms is the timed figure) --
    def cli_argv(self, *args: str) -> tuple[list[str], dict[str, str]]:
        """(argv, environment) of the peer's CLI with args."""
        raise NotImplementedError

    def cli(self, *args: str, timeout: float = 180, threaded: bool = False) -> Cmd:
        """Runs the peer's CLI with args in its namespace (threaded: from a worker thread,
        untimed)."""
        return self._exec(*self.cli_argv(*args), timeout, threaded)

    def preexec(self) -> Callable[[], None] | None:
        """What a child runs before exec to be in the peer's namespace (for commands
        started without run_cmd)."""
        fd = self._ns_fd
        if fd is None:
            return None
        return lambda: host.setns_net(fd)

    hung_reason = ""

    def _exec(self, argv: list[str], env: dict[str, str], timeout: float,
              threaded: bool) -> Cmd:
        """run_cmd for this peer; once a command timed out, the peer counts as hung and
        every later command fails at once (the clean-up stops its daemon)."""
        if self.hung_reason:
            return Cmd(argv, 124, "", f"stopped answering earlier: {self.hung_reason}", 0.0)
        r = run_cmd(argv, env=env, netns_fd=self._ns_fd, timeout=timeout, threaded=threaded)
        if r.rc == 124 and r.err.startswith("timed out"):
            self.hung_reason = f"`{r.shown()}` {r.err}"
        return r

    def network_create(self, name: str, *extra: str) -> Cmd:
        return self.cli("network", "create", *extra, name)

    def network_rm(self, name: str) -> Cmd:
        return self.cli("network", "rm", name)

    def network_ls(self) -> Cmd:
        return self.cli("network", "ls")

    def api_socket(self) -> str | None:
        return None

    def run_args(self, name: str, network: str) -> list[str]:
        args = ["run", "-d", "--name", name, "--network", network]
        if network != "none":
            args += ["--dns", STUB_DNS]
        return args

    def run_container(self, name: str, network: str, *extra: str,
                      command: Sequence[str] = ("sleep", "86400"), timeout: float = 60) -> Cmd:
        """`run -d --name NAME --network NETWORK [--dns STUB] EXTRA... busybox COMMAND`."""
        return self.cli(*self.run_args(name, network), *extra, IMAGE, *command,
                        timeout=timeout)

    def container_pid(self, name: str) -> int:
        """The pid of a running container's first process (its namespaces are ours to
        enter: the load tools run there)."""
        r = self.cli("inspect", "--format", "{{.State.Pid}}", name, timeout=60).check()
        try:
            pid = int(r.out.strip())
        except ValueError:
            raise PeerError(f"`inspect {name}`: no pid in {r.out.strip()[:80]!r}") from None
        if pid <= 0:
            raise PeerError(f"`inspect {name}`: not running (pid {pid})")
        return pid

    def netns_path(self) -> str:
        """The peer's (daemon's) network namespace, as a path nsenter takes."""
        return str(self.ns_path)

    def dns_target(self, network: str, container: str) -> tuple[str, str]:
        """(the resolver a container on network asks, the name its clients send for
        container): Docker's embedded DNS and muslin's answer at 127.0.0.11."""
        return "127.0.0.11", container

    def open_direct_path(self, iface: str) -> str:
        """Lets traffic from iface (in the peer's namespace) reach containers' addresses
        directly, for the "direct" reference path; returns a note when it had to change
        the peer's firewall ("" when the peer accepts that traffic anyway)."""
        return ""

    rm_args: tuple[str, ...] = ("rm", "-f")
    # `docker rm -f` commands side by side hang dockerd 20.10's answers (seen here)
    rm_parallel = 1

    def remove_containers(self, names: Sequence[str], threaded: bool = False,
                          timeout: float | None = None) -> None:
        """Removes containers (untimed), rm_parallel commands at a time (from worker
        threads: through nsenter)."""
        chunks = [list(names[i:i + 50]) for i in range(0, len(names), 50)]
        in_threads(lambda c: self.cli(*self.rm_args, *c, timeout=timeout or 60 + 3 * len(c),
                                      threaded=True), chunks, self.rm_parallel)

    def network_remove_all(self, name: str) -> Cmd:
        """Removes a network in teardown (after its containers)."""
        return self.network_rm(name)

    def connect(self, network: str, container: str) -> Cmd:
        return self.cli("network", "connect", network, container)

    def disconnect(self, network: str, container: str) -> Cmd:
        return self.cli("network", "disconnect", network, container)

    def memory(self) -> dict[str, float]:
        """{'daemon': MiB, 'monitors': MiB} for the figure with many endpoints."""
        return {}

    def our_processes(self) -> list[int]:
        """Every process of the run: orphans (shims, conmons) go to the outer process,
        the run's subreaper, which is our parent."""
        return host.descendants(os.getppid())

    def conmon_memory(self, among: list[int] | None = None) -> dict[str, float]:
        """PSS (MiB) and count of this peer's conmons (those naming its directory)."""
        pids = self.our_processes() if among is None else among
        conmons = [p for p in pids if _is_conmon_of(host.cmdline(p), str(self.dir))]
        return {"monitors": sum(host.pss_kib(p) for p in conmons) / 1024,
                "monitor_count": float(len(conmons))}


def _is_conmon_of(cmdline: str, directory: str) -> bool:
    return os.path.basename(cmdline.split(" ")[0]) == "conmon" and directory in cmdline


class EnginePeer(Peer):
    """A daemon speaking the Docker Engine API, driven by the real docker CLI."""

    binary = ""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.sock = str(self.dir / "engine.sock")
        self.pidfile = self.dir / "daemon.pid"
        self.daemon: subprocess.Popen[bytes] | None = None

    def daemon_argv(self) -> list[str]:
        raise NotImplementedError

    def daemon_config(self) -> dict[str, Any]:
        return {"dns": [STUB_DNS]}

    def _start(self) -> None:
        if not self.ctx.docker_cli:
            raise PeerError("no docker CLI on this machine")
        if not (os.path.isabs(self.binary) and os.access(self.binary, os.X_OK)) \
                and not shutil.which(self.binary):
            raise PeerError(f"{self.binary}: not found")
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "daemon.json").write_text(json.dumps(self.daemon_config()) + "\n")
        (self.dir / "cli-config").mkdir(exist_ok=True)
        self.make_netns()
        self.daemon = self.spawn(self.daemon_argv(), "daemon.log")
        deadline = time.monotonic() + 90
        while True:
            if self.daemon.poll() is not None:
                raise PeerError(f"exited with status {self.daemon.returncode}: "
                                f"{_tail(self.dir / 'daemon.log')}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _, _ = http_request(self.sock, "GET", "/_ping", timeout=5)
                if status == 200:
                    break
            if time.monotonic() > deadline:
                raise PeerError(f"no answer on {self.sock} after 90 s: "
                                f"{_tail(self.dir / 'daemon.log')}")
            time.sleep(0.2)
        r = self.cli("version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})")
        r.check()
        self.version = f"{self.describe()} {r.out.strip()}, docker CLI " + self._cli_version()
        self.network_ls().check()
        self.api_status = "ok"
        self._probe_containers()

    def describe(self) -> str:
        return self.binary

    def _cli_version(self) -> str:
        r = run_cmd([self.ctx.docker_cli, "--version"])
        parts = r.out.split()
        return parts[2].rstrip(",") if len(parts) > 2 else "?"

    def _probe_containers(self) -> None:
        r = self.cli("import", str(self.ctx.image_tar), f"{IMAGE}:latest", timeout=300)
        if r.rc == 0:
            r = self.cli("run", "--rm", "--network", "none", IMAGE, "true", timeout=120)
        self.containers = "ok" if r.rc == 0 else self.containers_unsupported(r)

    def containers_unsupported(self, r: Cmd) -> str:
        msg = (r.err.strip() or r.out.strip() or f"exit {r.rc}").splitlines()[-1]
        return f"failed: {msg[:200]}"

    def cli_env(self) -> dict[str, str]:
        env = dict(self.ctx.env)
        env.update(DOCKER_HOST=f"unix://{self.sock}",
                   DOCKER_CONFIG=str(self.dir / "cli-config"), DOCKER_CLI_HINTS="false")
        return env

    def cli_argv(self, *args: str) -> tuple[list[str], dict[str, str]]:
        return [self.ctx.docker_cli, *args], self.cli_env()

    def api_socket(self) -> str | None:
        return self.sock if self.ok else None

    def daemon_pid(self) -> int | None:
        return self.daemon.pid if self.daemon is not None else None

    def _cleanup(self) -> list[str]:
        problems: list[str] = []
        if self.daemon is not None and self.daemon.poll() is None and self.ok \
                and not self.hung_reason:
            r = self.cli("ps", "-aq", timeout=60)
            ids = r.out.split() if r.rc == 0 else []
            if ids:
                self.remove_containers(ids)
        if self.daemon is not None and self.daemon.poll() is None:
            killed = host.end_processes([self.daemon.pid],
                                        grace=10 if self.hung_reason else 30)
            problems += [f"{self.id}: daemon needed SIGKILL: {k}" for k in killed]
        return problems


class DockerdPeer(EnginePeer):
    id = "dockerd"
    label = "dockerd"
    binary = "dockerd"

    def describe(self) -> str:
        return "Debian docker.io dockerd"

    def daemon_argv(self) -> list[str]:
        return ["dockerd", "--config-file", str(self.dir / "daemon.json"),
                "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
                "--pidfile", str(self.pidfile), "-H", f"unix://{self.sock}",
                "--cgroup-parent", f"{self.ctx.cgroup_parent}/dockerd"]

    def _cleanup(self) -> list[str]:
        problems = super()._cleanup()
        runc_root = self.dir / "exec" / "runtime-runc" / "moby"
        problems += _runc_sweep(str(runc_root), self.id)
        return problems

    def memory(self) -> dict[str, float]:
        pid = self.daemon_pid()
        if pid is None:
            return {}
        ours = self.our_processes()
        containerd = [p for p in ours if host.cmdline(p).startswith("containerd --config")
                      and str(self.dir) in host.cmdline(p)]
        shims = [p for p in ours if "containerd-shim" in host.cmdline(p)
                 and str(self.dir) in host.cmdline(p)]
        daemon_kib = host.rss_kib(pid) + sum(host.rss_kib(p) for p in containerd)
        return {"daemon": daemon_kib / 1024,
                "monitors": sum(host.pss_kib(p) for p in shims) / 1024,
                "monitor_count": float(len(shims))}


class MuslindPeer(EnginePeer):
    id = "muslin"
    label = "muslin"
    compare = False
    binary = PYTHON

    def describe(self) -> str:
        rev = run_cmd(["git", "-C", str(REPO), "describe", "--always", "--dirty"])
        return f"muslind ({rev.out.strip() or '?'})"

    def daemon_config(self) -> dict[str, Any]:
        return {"dns": [STUB_DNS]}

    @property
    def prefix(self) -> str:
        """An instance prefix of the run's own: muslind's containers' cgroups go under
        /<prefix>/ (not the machine's /muslin/), removed with the run."""
        return muslin_prefix(self.ctx.run_id)

    def daemon_argv(self) -> list[str]:
        return [self.binary, "-m", "muslin.daemon.main",
                "--config-file", str(self.dir / "daemon.json"),
                "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
                "--pidfile", str(self.pidfile), "--host", f"unix://{self.sock}",
                "--prefix", self.prefix]

    def memory(self) -> dict[str, float]:
        pid = self.daemon_pid()
        if not pid:
            return {}
        return {"daemon": host.rss_kib(pid) / 1024, **self.conmon_memory()}

    def open_direct_path(self, iface: str) -> str:
        """muslind's network chains accept forwarded traffic to a container only when it
        was DNATed (or is a reply): a routed packet to a container's address is dropped.
        One accept rule for iface at the head of the instance table's forward chain (in
        the peer's namespace only) opens the reference path."""
        r = run_cmd(["nft", "-j", "list", "chains"], netns_fd=self._ns_fd, timeout=30).check()
        chains = [c["chain"] for c in json.loads(r.out).get("nftables", []) if "chain" in c]
        fwd = [c for c in chains if c.get("hook") == "forward" and c.get("family") == "inet"]
        if not fwd:
            raise PeerError("no inet forward chain in muslind's namespace")
        c = fwd[0]
        run_cmd(["nft", "insert", "rule", "inet", c["table"], c["name"], "iifname", iface,
                 "accept"], netns_fd=self._ns_fd, timeout=30).check()
        return (f"muslin drops routed traffic to a container's address from outside (only "
                f"DNATed traffic and replies pass); for the direct reference the bench put "
                f"`iifname {iface} accept` at the head of its forward chain "
                f"({c['table']}/{c['name']}).")


class MuslinCliPeer(Peer):
    """The muslin CLI against the same muslind (network figures only)."""

    id = "muslin-cli"
    label = "muslin CLI"
    compare = False
    api = False

    def __init__(self, ctx: Context, daemon: MuslindPeer) -> None:
        super().__init__(ctx)
        self.daemon = daemon
        self.containers = "n/a"
        self.argv: list[str] = []

    def _start(self) -> None:
        if not self.daemon.ok:
            raise PeerError("muslind did not start")
        if not (REPO / "src" / "muslin" / "cli" / "__main__.py").exists():
            raise PeerError("src/muslin/cli/__main__.py: not found")
        self.argv = [PYTHON, "-m", "muslin.cli"]
        self._ns_fd = self.daemon._ns_fd
        self.network_ls().check()
        self.version = "python -m muslin.cli"

    def cli_argv(self, *args: str) -> tuple[list[str], dict[str, str]]:
        env = dict(self.ctx.env)
        env["MUSLIN_HOST"] = f"unix://{self.daemon.sock}"
        return [*self.argv, "-H", f"unix://{self.daemon.sock}", *args], env

    def cli(self, *args: str, timeout: float = 180, threaded: bool = False) -> Cmd:
        self.hung_reason = self.hung_reason or self.daemon.hung_reason
        r = super().cli(*args, timeout=timeout, threaded=threaded)
        self.daemon.hung_reason = self.daemon.hung_reason or self.hung_reason
        return r

    def stop(self) -> list[str]:
        self._ns_fd = None  # the daemon's peer owns it
        return []

    def netns_path(self) -> str:
        return self.daemon.netns_path()


class PodmanPeer(Peer):
    id = "podman"
    label = "podman"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.containers = "ok"
        self.api_sock = str(self.dir / "api.sock")
        self.service: subprocess.Popen[bytes] | None = None
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nhard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        # Root cannot raise rlimits here, and Podman asks runc for more than we have
        # (containers.conf's default_ulimits are not applied by 4.3's `run`): ask for
        # what we have. runc init refuses nproc from 65536 up here (found by trying).
        nproc = min(nhard, 32768) if nhard != resource.RLIM_INFINITY else 32768
        self.ulimits = [f"nofile={hard}:{hard}", f"nproc={nproc}:{nproc}"]

    def conf(self) -> str:
        d = self.dir
        ulimits = ", ".join(json.dumps(u) for u in self.ulimits)
        return "\n".join([
            "[containers]",
            f"default_ulimits = [{ulimits}]",
            "[network]",
            'network_backend = "netavark"',
            f'network_config_dir = "{d}/networks"',
            "[engine]",
            'cgroup_manager = "cgroupfs"',
            'events_logger = "file"',
            f'events_logfile_path = "{d}/events.log"',
            f'tmp_dir = "{d}/tmp"',
            f'static_dir = "{d}/root/libpod"',
            f'volume_path = "{d}/volumes"',
            'runtime = "runc"',
            "",
        ])

    def globals(self) -> list[str]:
        d = self.dir
        return ["podman", "--root", f"{d}/root", "--runroot", f"{d}/runroot",
                "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
                "--tmpdir", f"{d}/tmp", "--network-config-dir", f"{d}/networks",
                "--events-backend", "file"]

    def env(self) -> dict[str, str]:
        env = dict(self.ctx.env)
        env["CONTAINERS_CONF"] = str(self.dir / "containers.conf")
        env["TMPDIR"] = str(self.dir / "tmp")
        return env

    def _start(self) -> None:
        for b in ("podman", "netavark", "conmon", "runc"):
            if not shutil.which(b) and not os.access(f"/usr/lib/podman/{b}", os.X_OK):
                raise PeerError(f"{b}: not found")
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "tmp").mkdir(exist_ok=True)
        (self.dir / "containers.conf").write_text(self.conf())
        self.make_netns()
        r = self.cli("info", "--format", "{{.Version.Version}} {{.Host.NetworkBackend}}")
        r.check()
        version, _, backend = r.out.strip().partition(" ")
        if backend != "netavark":
            raise PeerError(f"network backend is {backend!r}, not netavark")
        nv = run_cmd(["/usr/lib/podman/netavark", "--version"])
        self.version = f"Podman {version}, {nv.out.strip() or 'netavark'}, runc, conmon"
        self.network_ls().check()
        self.cli("import", str(self.ctx.image_tar), IMAGE, timeout=300).check()
        self._start_service()

    def _start_service(self) -> None:
        """`podman system service` answers the Docker-compatible API for the API figures."""
        self.service = self.spawn([*self.globals(), "system", "service", "--time=0",
                                   f"unix://{self.api_sock}"], "service.log", env=self.env())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.service.poll() is not None:
                self.api_status = (f"could not start: podman system service exited "
                                   f"{self.service.returncode}: {_tail(self.dir / 'service.log')}")
                return
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_request(self.api_sock, "GET", "/_ping", timeout=5)[0] == 200:
                    self.api_status = "ok"
                    return
            time.sleep(0.2)
        self.api_status = "could not start: podman system service gave no answer in 60 s"

    def cli_argv(self, *args: str) -> tuple[list[str], dict[str, str]]:
        return [*self.globals(), *args], self.env()

    def api_socket(self) -> str | None:
        return self.api_sock if self.ok and self.api_status == "ok" else None

    def run_args(self, name: str, network: str) -> list[str]:
        args = super().run_args(name, network)
        for u in self.ulimits:
            args += ["--ulimit", u]
        return [*args, "--cgroup-parent", f"{self.ctx.cgroup_parent}/podman"]

    def dns_target(self, network: str, container: str) -> tuple[str, str]:
        """aardvark-dns answers on the network's gateway; Podman's search domain
        `dns.podman` makes a client ask `<name>.dns.podman` first."""
        r = self.cli("network", "inspect", "--format",
                     "{{range .Subnets}}{{.Gateway}} {{end}}", network, timeout=60).check()
        gateways = [g for g in r.out.split() if ":" not in g]
        if not gateways:
            raise PeerError(f"`podman network inspect {network}`: no IPv4 gateway")
        return gateways[0], f"{container}.dns.podman"

    rm_args = ("rm", "-f", "-i", "-t", "0")
    rm_parallel = 2

    def network_remove_all(self, name: str) -> Cmd:
        return self.cli("network", "rm", "-f", name)

    def _cleanup(self) -> list[str]:
        problems: list[str] = []
        if self._ns_fd is not None and not self.hung_reason:
            self.cli("rm", "-a", "-f", "-t", "0", timeout=600)
            r = self.cli("network", "ls", "--format", "{{.Name}}", timeout=60)
            nets = [n for n in r.out.split() if n != "podman"] if r.rc == 0 else []
            if nets:
                self.cli("network", "rm", "-f", *nets, timeout=300)
        if self.service is not None and self.service.poll() is None:
            killed = host.end_processes([self.service.pid], grace=10)
            problems += [f"podman service needed SIGKILL: {k}" for k in killed]
        problems += _runc_sweep("/run/runc", self.id)  # overlaid: the bench's own
        return problems

    def memory(self) -> dict[str, float]:
        ours = self.our_processes()
        aardvark = [p for p in ours if "aardvark-dns" in host.cmdline(p).split(" ")[0]]
        return {"daemon": sum(host.rss_kib(p) for p in aardvark) / 1024,
                **self.conmon_memory(ours)}


def in_threads(fn: Callable[[T], object], items: Sequence[T], workers: int) -> None:
    """fn over items on worker threads; an interruption (a signal's exception) does not
    wait for the workers, whose commands end with the daemons the clean-up stops."""
    pool = ThreadPoolExecutor(max(1, workers))
    try:
        list(pool.map(fn, items))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def muslin_prefix(run_id: str) -> str:
    """The run's muslind instance prefix: `mb` and the run's last six digits."""
    return "mb" + "".join(c for c in run_id if c.isdigit())[-6:]


def _runc_sweep(root: str, who: str) -> list[str]:
    """Kills and deletes containers left in a runc state root (after their daemon)."""
    if not os.path.isdir(root) or not shutil.which("runc"):
        return []
    r = run_cmd(["runc", "--root", root, "list", "-q"], timeout=60)
    left = r.out.split() if r.rc == 0 else []
    for cid in left:
        run_cmd(["runc", "--root", root, "kill", cid, "KILL"], timeout=30)
        time.sleep(0.1)
        run_cmd(["runc", "--root", root, "delete", "-f", cid], timeout=30)
    return [f"{who}: removed {len(left)} container(s) left in {root}"] if left else []
