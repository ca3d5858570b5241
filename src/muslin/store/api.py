"""The store interface: JSON documents keyed by (kind, key), read and written in
transactions. Implementations: `LocalStore` (SQLite). Must not hold domain logic.
"""

from __future__ import annotations

import builtins
from contextlib import AbstractContextManager
from typing import Any, Protocol

Doc = dict[str, Any]


class Txn(Protocol):
    """Reads and writes inside one atomic transaction."""

    def get(self, kind: str, key: str) -> Doc | None: ...
    def list(self, kind: str, prefix: str = "") -> builtins.list[Doc]: ...
    def keys(self, kind: str, prefix: str = "") -> builtins.list[str]: ...
    def find(self, kind: str, field: str, value: Any) -> builtins.list[Doc]: ...
    def put(self, kind: str, key: str, doc: Doc) -> None: ...
    def delete(self, kind: str, key: str) -> None: ...


class Store(Txn, Protocol):
    """A store; its own get/list/put/delete each run as a one-step transaction."""

    scope: str

    def transaction(self) -> AbstractContextManager[Txn]: ...
    def close(self) -> None: ...
