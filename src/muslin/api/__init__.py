"""The Docker Engine API served by muslind: HTTP over a unix socket (h11 on asyncio),
the router with API-version negotiation, and the handlers in Docker's shapes.
Must not touch the kernel; handlers call the controller on worker threads.
"""
