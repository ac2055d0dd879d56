"""`python -m chargenet_local serve`: the local stack in the foreground (what `local up` starts)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from chargenet_local.stack import LocalStack


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m chargenet_local")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the local stack in the foreground")
    serve.add_argument("--home", type=Path, required=True)
    serve.add_argument("--template", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request otherwise
    LocalStack(args.home.resolve(), args.template.resolve()).serve()


if __name__ == "__main__":
    main()
