"""The only code that speaks FreeSWITCH: API command strings, events, logs."""
