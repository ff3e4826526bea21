"""The ``chorus`` command: one tool, subcommands from each layer, imported only when used.

Errors the layers raise on purpose (`engine.errors.EngineError` and its kinds) end as one line on
stderr with exit code 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import logging
import sys


def build_parser() -> argparse.ArgumentParser:
    from engine import cli as engine_cli
    from training import cli as training_cli

    parser = argparse.ArgumentParser(prog="chorus", description="Chorus: jazz and folk clips on request.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    training_cli.add_parsers(sub)
    training_cli.add_train_parsers(sub)
    training_cli.add_eval_parser(sub)
    engine_cli.add_parsers(sub)
    serve = sub.add_parser("serve", help="run the Discord bot (settings from the environment and .env)")
    serve.set_defaults(func=cmd_serve)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.app import serve
    from engine.settings import Settings

    settings = Settings.from_env()
    logging.getLogger().setLevel(settings.log_level)
    logging.getLogger("discord").setLevel(max(logging.INFO, logging.getLevelName(settings.log_level)))
    serve(settings)
    return 0


def main(argv: list[str] | None = None) -> int:
    from engine.errors import EngineError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="chorus: %(message)s" if args.command != "serve" else "%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except EngineError as exc:
        print(f"chorus: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("chorus: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
