"""The `muslin` command line: a Docker Engine API client over muslind's unix socket.

It imports nothing of muslin's core and only small stdlib modules, so that
`muslin network ls` starts fast. Entry point: `muslin.cli.main:main`.
"""
