"""Docker's v1 plugin protocol (client side): finding a plugin by name in the
instance's plugin directories, the `/Plugin.Activate` handshake, and JSON calls
with Docker's retries. Remote network and IPAM drivers are built on it
(muslin.drivers.remote, muslin.cnm.remote_ipam); `muslin plugin serve` is the
other direction (muslin.plugins.serve)."""

from muslin.plugins.discovery import PluginAddress, PluginDirs, find
from muslin.plugins.registry import Plugin, PluginError, Plugins

__all__ = ["Plugin", "PluginAddress", "PluginDirs", "PluginError", "Plugins", "find"]
