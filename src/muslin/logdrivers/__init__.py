"""Container log drivers: json-file, local, syslog, journald, gelf, splunk and none,
fed from the spool conmon writes for each container, with Docker's options, modes,
dual-logging cache and `logs` reading.

Modules: `options` (names, validation, defaults: pure), `files` (json-file and
local formats, rotation, reading back), `wire` (syslog, GELF, Splunk HEC, journald
message formats: pure), `senders` (a sink per driver: the I/O), `shipper` (one
container's spool to its sinks, resumable), `service` (the daemon's view).
"""
