"""Contract tests: the shim and the live switch answer alike."""
