"""The example bridge plugin (examples/bridge_plugin.py) with faults on demand, for
tests: a JSON file maps method names (e.g. "Join") to "err" (answer {"Err"}),
"hang" (never answer) or "die" (the process exits mid-call). Read at every call, so
a test changes faults while the plugin runs.

    faulty_plugin.py --socket PATH --state FILE --faults FILE
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from bridge_plugin import BridgeDriver
from plugin_server import PluginFailure, State, serve


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--faults", required=True)
    args = ap.parse_args()

    def faulty(name: str, fn: Callable[[dict[str, Any]], dict[str, Any]]
               ) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def call(req: dict[str, Any]) -> dict[str, Any]:
            try:
                with open(args.faults) as f:
                    fault = json.load(f).get(name.split(".", 1)[1])
            except FileNotFoundError:
                fault = None
            if fault == "err":
                raise PluginFailure(f"{name} refused on purpose")
            if fault == "hang":
                time.sleep(3600)
            if fault == "die":
                os._exit(3)
            return fn(req)
        return call

    driver = BridgeDriver(State(args.state, {}))
    serve(args.socket, ["NetworkDriver"],
          {k: faulty(k, v) for k, v in driver.methods().items()})


if __name__ == "__main__":
    main()
