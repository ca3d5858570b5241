"""Child process of the crash-safety tests: opens the lab host's controller and runs
one operation; MUSLIN_FAULT (set by the test) kills it at the named apply step."""

from __future__ import annotations

import sys

import muslin


def main() -> None:
    state_dir, run_dir, prefix, host, op = sys.argv[1:6]
    ctl = muslin.Controller(state_dir=state_dir, run_dir=run_dir, prefix=prefix,
                            host_netns=host)
    if op == "network":
        ctl.create_network("crashnet")
    elif op == "join":
        sb = ctl.create_sandbox("victim")
        ep = ctl.network("base").create_endpoint("victim")
        ep.join(sb)
    ctl.close()


if __name__ == "__main__":
    main()
