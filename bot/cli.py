"""The ``chorus`` command: one tool, subcommands from each layer, imported only when used.

This is the one place where ``bot`` imports ``training``: the ``corpus``, ``train`` and ``eval``
subcommands are `training.cli`'s, registered here so Chorus has a single entry point. The import
is lazy (inside `build_parser`) and `training.cli` itself imports torch only inside its commands,
so ``chorus serve`` never loads it; nothing else in ``bot`` may import ``training``.

Errors the layers raise on purpose (`engine.errors.EngineError` and its kinds) end as one line on
stderr with exit code 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


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
    serve.add_argument("--check", action="store_true",
                       help="check the token is set, the SoundFont, ffmpeg, FluidSynth, the checkpoints and that the "
                            "database folder is writable, then exit 0 (ready) or 2, without connecting to Discord")
    serve.set_defaults(func=cmd_serve)
    backup = sub.add_parser("backup", help="copy the bot's database (CHORUS_DB_PATH) to FILE, safely while it runs")
    backup.add_argument("file", type=Path, help="the copy to write (a new file)")
    backup.set_defaults(func=cmd_backup)
    worker = sub.add_parser("worker", help="run a Celery worker composing clips for the bot (CHORUS_QUEUE=celery)")
    worker.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: CHORUS_DEVICE)")
    worker.add_argument("--concurrency", type=int, default=1,
                        help="batches (CHORUS_BATCH_MAX > 1) or jobs (CHORUS_BATCH_MAX=1) at once, in threads "
                             "sharing one model (default 1)")
    worker.add_argument("--name", default=None, help="the worker's node name (default chorus-<pid>@<host>)")
    worker.set_defaults(func=cmd_worker)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.settings import BotSettings
    from bot.ui.app import DiscordUnreachable, serve

    settings = BotSettings.from_env()
    if args.check:
        from bot.preflight import check

        found = check(settings)
        for line in found:
            print(f"chorus: {line}", file=sys.stderr)
        print("chorus: not ready" if found else f"chorus: ready (checkpoints in {settings.checkpoints_dir},"
              f" database {settings.db_path})", file=sys.stderr if found else sys.stdout)
        return 2 if found else 0
    logging.getLogger().setLevel(settings.log_level)
    logging.getLogger("discord").setLevel(max(logging.INFO, logging.getLevelName(settings.log_level)))
    try:
        serve(settings)
    except DiscordUnreachable as exc:
        print(f"chorus: error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from bot.settings import BotSettings, SettingsError
    from bot.store.db import backup

    settings = BotSettings.from_env()
    try:
        size = backup(settings.db_path, args.file)
    except (FileNotFoundError, FileExistsError) as exc:
        raise SettingsError(str(exc)) from exc
    print(f"{settings.db_path} -> {args.file} ({size:,} bytes)")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import dataclasses

    from bot.queues.celery.worker import check_device, run_worker
    from bot.settings import BotSettings

    settings = BotSettings.from_env()
    if args.device:
        settings = dataclasses.replace(settings, device=check_device(args.device))
    logging.getLogger().setLevel(settings.log_level)
    run_worker(settings, concurrency=args.concurrency, node=args.name)
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
