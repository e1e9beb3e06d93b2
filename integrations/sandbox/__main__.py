"""``python -m integrations.sandbox serve --fixture demo --port 8800 [--seed N]``"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from .core import FakeWeChat
from .server import SandboxServer

log = logging.getLogger("integrations.sandbox")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m integrations.sandbox")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the sandbox over HTTP")
    serve.add_argument("--fixture", default=os.environ.get("SANDBOX_FIXTURE", "demo"),
                       help="demo, small, empty, or a path to a JSON fixture")
    serve.add_argument("--host", default=os.environ.get("SANDBOX_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "8800")))
    serve.add_argument("--seed", type=int, default=None)
    serve.add_argument("--clock", choices=("running", "frozen"), default="running",
                       help="running follows real time from the fixture's 'now' (default)")
    serve.add_argument("--deliver", choices=("sync", "async", "manual"), default=None,
                       help="callback delivery (default: the fixture's)")
    serve.add_argument("--now", default=os.environ.get("SANDBOX_NOW", "real"),
                       help="the clock's start (ISO 8601), 'fixture' for the fixture's own, "
                            "or 'real' (default): callbacks then carry timestamps the app "
                            "accepts as fresh")
    serve.add_argument("--callback-base-url",
                       default=os.environ.get("SANDBOX_CALLBACK_BASE_URL"),
                       help="scheme://host:port of the app, replacing the fixture's")
    return parser.parse_args(argv)


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides: dict = {"clock": args.clock}
    if args.now == "real":
        from datetime import UTC, datetime

        overrides["now"] = datetime.now(UTC).isoformat()
    elif args.now != "fixture":
        overrides["now"] = args.now
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.deliver:
        overrides["deliver"] = args.deliver
    if args.callback_base_url:
        overrides["callback_base_url"] = args.callback_base_url
    core = FakeWeChat(args.fixture, **overrides)
    server = SandboxServer(core, args.host, args.port)
    signal.signal(signal.SIGTERM, _interrupt)
    log.info("WeChat sandbox on %s (fixture %s, seed %s); control API at %s/__fake__/, "
             "demo page at %s/__fake__/ui", server.url, args.fixture, core.seed, server.url,
             server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        core.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
