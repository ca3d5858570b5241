"""The local-scope store: SQLite in WAL mode, one file under the state dir.

A transaction is `BEGIN IMMEDIATE` on one shared connection guarded by a lock, so
transactions of all threads are serialised and committed ones survive a killed
process. Never hold a transaction across a kernel call. Must not know the documents.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from muslin.store.api import Doc

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
"""


class _SqlTxn:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def get(self, kind: str, key: str) -> Doc | None:
        row = self._db.execute(
            "SELECT doc FROM objects WHERE kind=? AND key=?", (kind, key)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def _range(self, kind: str, prefix: str, col: str) -> builtins.list[str]:
        if prefix:
            rows = self._db.execute(
                f"SELECT {col} FROM objects WHERE kind=? AND key>=? AND key<? ORDER BY key",
                (kind, prefix, prefix + "\U0010ffff"),
            ).fetchall()
        else:
            rows = self._db.execute(
                f"SELECT {col} FROM objects WHERE kind=? ORDER BY key", (kind,)
            ).fetchall()
        return [r[0] for r in rows]

    def list(self, kind: str, prefix: str = "") -> builtins.list[Doc]:
        return [json.loads(d) for d in self._range(kind, prefix, "doc")]

    def keys(self, kind: str, prefix: str = "") -> builtins.list[str]:
        return self._range(kind, prefix, "key")

    def find(self, kind: str, field: str, value: Any) -> builtins.list[Doc]:
        """The documents whose top-level `field` equals value (matched by SQLite's
        JSON functions: only those documents are decoded here)."""
        rows = self._db.execute(
            "SELECT doc FROM objects WHERE kind=? AND json_extract(doc, ?)=? ORDER BY key",
            (kind, f'$."{field}"', value),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def put(self, kind: str, key: str, doc: Doc) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO objects(kind, key, doc) VALUES (?, ?, ?)",
            (kind, key, json.dumps(doc, sort_keys=True)),
        )

    def delete(self, kind: str, key: str) -> None:
        self._db.execute("DELETE FROM objects WHERE kind=? AND key=?", (kind, key))


class LocalStore:
    """SQLite-backed store of the local scope."""

    scope = "local"

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._txn = _SqlTxn(self._db)
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[_SqlTxn]:
        with self._lock:
            if self._depth:  # nested: part of the outer transaction
                self._depth += 1
                try:
                    yield self._txn
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._txn
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    def get(self, kind: str, key: str) -> Doc | None:
        with self.transaction() as t:
            return t.get(kind, key)

    def list(self, kind: str, prefix: str = "") -> builtins.list[Doc]:
        with self.transaction() as t:
            return t.list(kind, prefix)

    def keys(self, kind: str, prefix: str = "") -> builtins.list[str]:
        with self.transaction() as t:
            return t.keys(kind, prefix)

    def find(self, kind: str, field: str, value: Any) -> builtins.list[Doc]:
        with self.transaction() as t:
            return t.find(kind, field, value)

    def put(self, kind: str, key: str, doc: Doc) -> None:
        with self.transaction() as t:
            t.put(kind, key, doc)

    def delete(self, kind: str, key: str) -> None:
        with self.transaction() as t:
            t.delete(kind, key)

    def close(self) -> None:
        with self._lock:
            self._db.close()
