"""The live layer: tests against a real FreeSWITCH (skipped when none answers on ESL)."""
