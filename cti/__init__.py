"""cti: a call-center CTI layer inside FreeSWITCH (mod_python3). See README.md."""

__version__ = "0.1.0"
