"""The bench's command results (bench/peers.py `Cmd`): how failures read in the table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.peers import Cmd, PeerError, muslin_prefix


def test_commands_are_shown_by_their_verbs() -> None:
    run = Cmd(["/usr/local/bin/docker", "run", "-d", "--name", "x", "busybox", "sleep", "9"],
              0, "", "", 1.0)
    assert run.shown() == "docker run"
    podman = Cmd(["podman", "--root", "/r", "network", "create", "--subnet", "10.0.0.0/16",
                  "n"], 0, "", "", 1.0)
    assert podman.shown() == "podman network create"
    assert Cmd(["nsenter", "--net=/x", "docker", "rm", "-f", "a"], 0, "", "", 0).shown() == (
        "docker rm")


def test_check_passes_success_and_names_the_failure() -> None:
    ok = Cmd(["docker", "network", "ls"], 0, "NETWORK ID", "", 3.0)
    assert ok.check() is ok
    with pytest.raises(PeerError, match=r"^`docker network rm` exit 1: Error: in use$"):
        Cmd(["docker", "network", "rm", "n"], 1, "", "warning\nError: in use\n", 5.0).check()
    with pytest.raises(PeerError, match=r"^`docker run` timed out after 60 s$"):
        Cmd(["docker", "run", "busybox"], 124, "", "timed out after 60 s", 60000.0).check()
    with pytest.raises(PeerError, match="exit 2: exit 2"):
        Cmd(["podman", "info"], 2, "", "", 1.0).check()


def test_muslin_prefix_is_a_valid_instance_prefix() -> None:
    p = muslin_prefix("1128-082600")
    assert p == "mb082600"
    assert p[0].isalpha() and p.isalnum() and p.islower() and len(p) <= 8


def test_check_names_the_error_not_the_cli_help_hint() -> None:
    run = Cmd(["docker", "run", "-d", "busybox"], 125, "",
              "docker: Error response from daemon: boom.\nRun 'docker run --help' for more "
              "information\n", 5.0)
    with pytest.raises(PeerError, match=r"exit 125: docker: Error response from daemon: boom"):
        run.check()
