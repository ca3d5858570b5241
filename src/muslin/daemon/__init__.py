"""muslind: the daemon. Configuration, start-up, signals, one asyncio loop serving the
Engine API; core calls run on worker threads. Must not touch the kernel itself.
"""
