"""Network drivers: the driver protocol (`api`) and its built-in implementations."""
