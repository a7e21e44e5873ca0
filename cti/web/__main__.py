"""``python3 -m cti.web [--config <cti.yaml>] [--port N] [--listen ADDRESS]``: serve the pages."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from cti.domain.errors import CtiError
from cti.web.service import Service

DEFAULT_CONFIG = "/usr/local/freeswitch/conf/cti.yaml"


async def serve(args: argparse.Namespace) -> None:
    service = Service(args.config, args.port, args.listen)
    port = await service.start()
    switches = ", ".join(f"{link.name or 'switch'} at {link.host}:{link.port}" for link in service.links.values())
    logging.getLogger("cti.web").info("cti web: serving http://%s:%s/ (%s)", service.listen, port, switches)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await service.stop()


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m cti.web", description="cti's web toolbar and wallboard")
    parser.add_argument("--config", default=os.environ.get("CTI_CONFIG", DEFAULT_CONFIG), help="the switch's cti.yaml")
    parser.add_argument("--port", type=int, default=None, help="overrides web.port")
    parser.add_argument("--listen", default=None, help="overrides web.listen")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        asyncio.run(serve(args))
    except CtiError as exc:
        print(exc.reply(), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"-ERR web cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
