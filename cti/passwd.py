"""Turn a seat password into the hash that goes into cti.yaml.

    python3 -m cti.passwd                 # asks twice, prints the hash
    echo -n 1234 | python3 -m cti.passwd  # from standard input (scripts)

Run it on any machine with Python 3.9+; it is not a switch command, so the password never
passes through fs_cli's history or the switch's log.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import List, Optional

from cti.domain import passwords


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m cti.passwd", description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=passwords.DEFAULT_ITERATIONS)
    opts = parser.parse_args(argv)
    if opts.iterations < 1:
        parser.error("--iterations must be at least 1")
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
