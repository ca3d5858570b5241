"""Embedded DNS (issue 7): a resolver at 127.0.0.11 inside every sandbox on a
user-defined network, served on the daemon's asyncio loop.

- `muslin.dns.records`: the answer tables built from the controller's documents (pure).
- `muslin.dns.message`: queries in, replies or forwards out (pure; dnspython is the
  wire-format reference, hot answers are pre-encoded).
- `muslin.dns.rules`: the sandbox's nftables table redirecting 127.0.0.11:53 (pure).
- `muslin.dns.server`: `DnsService`, the sockets and the loop (the only I/O here).
"""

from muslin.dns.records import DEFAULT_TTL, Answer, NameRecord, Records, View
from muslin.dns.server import DnsService

__all__ = ["DEFAULT_TTL", "Answer", "DnsService", "NameRecord", "Records", "View"]
