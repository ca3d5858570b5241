"""The local store's lookups (SQLite, a temporary file): find by a field, keys by a
prefix, inside and outside transactions."""

from __future__ import annotations

from pathlib import Path

from muslin.store.local import LocalStore


def test_find_matches_a_top_level_field_only(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path / "state.db"))
    try:
        store.put("container", "aaa1", {"id": "aaa1", "name": "web", "n": 1})
        store.put("container", "aab2", {"id": "aab2", "name": "db", "nested": {"name": "web"}})
        store.put("network", "x", {"id": "x", "name": "web"})
        store.put("container", "odd", {"id": "odd", "name": 'we"b'})
        assert [d["id"] for d in store.find("container", "name", "web")] == ["aaa1"]
        assert store.find("container", "name", "nosuch") == []
        assert [d["id"] for d in store.find("container", "name", 'we"b')] == ["odd"]
        assert [d["id"] for d in store.find("container", "n", 1)] == ["aaa1"]
        assert store.keys("container", "aa") == ["aaa1", "aab2"]
        with store.transaction() as t:
            t.put("container", "ccc", {"id": "ccc", "name": "cache"})
            assert [d["id"] for d in t.find("container", "name", "cache")] == ["ccc"]
    finally:
        store.close()
