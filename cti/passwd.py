"""Turn a seat password into the hash that goes into cti.yaml.

    python3 -m cti.passwd                 # asks twice, prints the hash
    echo -n 1234 | python3 -m cti.passwd  # from standard input (scripts)
    python3 -m cti.passwd --seed cti.yaml # a random PIN for each seat whose password anybody knows

Run it on any machine with Python 3.9+; it is not a switch command, so the password never
passes through fs_cli's history or the switch's log.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import secrets
import sys
from typing import List, Optional, Tuple

from cti.domain import passwords

KNOWN = ("1234",)  # the example config's password: nobody's secret
PIN_DIGITS = 6
_SEAT = re.compile(r'^  "?([^"\s:#]+)"?:\s*(#.*)?$')
_PASSWORD = re.compile(r'^(\s+password:\s*)"([^"]*)"(.*)$')


def seed(path: str, iterations: int = passwords.DEFAULT_ITERATIONS) -> List[Tuple[str, str]]:
    """Give each seat in ``path`` whose password is one anybody knows (``KNOWN``: the
    example's) a random PIN of ``PIN_DIGITS`` digits; the file keeps only its hash, in place
    (same mode). The (seat, PIN) pairs, to be shown once."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    seat, pins = "", []
    for i, line in enumerate(lines):
        m = _SEAT.match(line)
        if m:
            seat = m.group(1)
            continue
        m = _PASSWORD.match(line)
        if not m or not passwords.well_formed(m.group(2)):
            continue
        if any(passwords.verify(m.group(2), known) for known in KNOWN):
            pin = "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))
            lines[i] = f'{m.group(1)}"{passwords.make(pin, iterations)}"{m.group(3)}'
            pins.append((seat, pin))
    if pins:
        tmp = f"{path}.new.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    return pins


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m cti.passwd", description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=passwords.DEFAULT_ITERATIONS)
    parser.add_argument("--seed", metavar="CTI_YAML", help="give each seat whose password anybody knows a random PIN")
    opts = parser.parse_args(argv)
    if opts.iterations < 1:
        parser.error("--iterations must be at least 1")
    if opts.seed:
        for seat, pin in seed(opts.seed, opts.iterations):
            print(f"seat {seat}: PIN {pin}")
        return 0
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.read().rstrip("\r\n")
    if not password:
        print("empty password", file=sys.stderr)
        return 1
    print(passwords.make(password, opts.iterations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
