"""State of muslin: persistence behind one small interface, with scopes.

`local` is SQLite (this host); `global` will be etcd (multi-host networks). Objects
are JSON documents keyed by (kind, key). Must not know what the documents mean.
"""

from muslin.store.api import Store, Txn
from muslin.store.local import LocalStore

__all__ = ["LocalStore", "Store", "Txn"]
