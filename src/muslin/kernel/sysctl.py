"""Sysctls of the calling thread's network namespace (/proc/sys/net is per namespace).

Call only on a thread inside the wanted namespace (a NetnsThread or run_in). Must
not decide values.
"""

from __future__ import annotations


def _path(key: str) -> str:
    """sysctl(8) style (net.ipv4.ip_forward) or a path below /proc/sys (for names with dots)."""
    return "/proc/sys/" + (key if "/" in key else key.replace(".", "/"))


def get(key: str) -> str | None:
    """The value, or None when this kernel has no such sysctl."""
    try:
        with open(_path(key)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def set(key: str, value: str) -> None:
    with open(_path(key), "w") as f:
        f.write(value)
