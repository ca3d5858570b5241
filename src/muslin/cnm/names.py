"""Names of one muslin instance's kernel objects, derived from its prefix.

Pure. An instance without a prefix is the system's muslin (`muslin0`, table
`muslin`); a prefixed one (`t1`) is isolated (`t10`, table `muslin_t1`) and marks
its links `muslin:t1:`. Must do no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from muslin.errors import InvalidParameter

_PREFIX = re.compile(r"[a-z][a-z0-9]{0,7}")


@dataclass(frozen=True)
class InstanceNames:
    prefix: str | None

    def __post_init__(self) -> None:
        if self.prefix is not None and not _PREFIX.fullmatch(self.prefix):
            raise InvalidParameter(
                f"invalid prefix {self.prefix!r}: 1 to 8 lowercase letters and digits, "
                "starting with a letter")

    @property
    def instance(self) -> str:
        return self.prefix or "muslin"

    @property
    def mark(self) -> str:
        """The interface alias prefix of every link this instance makes."""
        return f"muslin:{self.instance}:"

    @property
    def table(self) -> str:
        return f"muslin_{self.prefix}" if self.prefix else "muslin"

    @property
    def default_bridge(self) -> str:
        return f"{self.prefix}0" if self.prefix else "muslin0"
