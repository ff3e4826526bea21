"""The tree's shape: packages import one way, no circles, no private names, no long modules or
functions (`tests.imports`); the bot's process never imports torch; settings have one reader."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import fields

from bot.settings import BotSettings, Secret
from engine.settings import Settings
from tests.helpers import REPO
from tests.imports import check, read_tree

PACKAGES = ("engine", "engine.music", "engine.models", "engine.band", "engine.media", "engine.formats",
            "engine.compose", "bot", "bot.ui", "bot.service", "bot.store", "bot.queues", "bot.queues.celery")

# what `chorus serve` and the bot application import, with both queue backends
BOT_PROCESS = """
import sys
import bot.ui.app, bot.cli, bot.queues.celery.queue, bot.ui.delivery, bot.ui.tree
bot.cli.build_parser()
from bot.settings import BotSettings
bot.ui.app.make_queue(BotSettings(queue="local"))
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("torch modules:", loaded)
sys.exit(1 if loaded else 0)
"""


def test_the_bot_process_never_imports_torch() -> None:
    # a fresh interpreter: other tests' imports must not hide (or cause) a torch import
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", BOT_PROCESS], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_one_from_env_reads_the_bot_and_engine_keys_and_workers_get_only_the_engine_part() -> None:
    s = BotSettings.from_env({"DISCORD_TOKEN": "sekrit", "CHORUS_REDIS_URL": "redis://:pw@h:6379/0",
                              "CHORUS_ADMIN_USER_IDS": "1, 2", "CHORUS_SAMPLE_RATE": "44100",
                              "CHORUS_JOB_TIMEOUT_S": "30"}, dotenv=None)
    assert s.admin_user_ids == frozenset({1, 2}) and s.sample_rate == 44100 and s.job_timeout_s == 30
    assert isinstance(s.discord_token, Secret) and "sekrit" not in repr(s) and "pw@" not in repr(s)
    engine = s.engine_only()
    assert type(engine) is Settings and engine.sample_rate == 44100
    assert not {"discord_token", "redis_url", "job_timeout_s", "db_path"} & {f.name for f in fields(engine)}


def test_every_key_is_in_env_example_and_only_settings_read_the_environment() -> None:
    keys = set(re.findall(r"^([A-Z_]+)=", (REPO / ".env.example").read_text(), re.M))
    assert keys == {f.metadata["env"] for f in fields(BotSettings)}
    readers = []
    for path in sorted((REPO / "bot").rglob("*.py")) + sorted((REPO / "engine").rglob("*.py")):
        if re.search(r"os\.environ|getenv", path.read_text()):
            readers.append(str(path.relative_to(REPO)))
    # parts passes PATH and PYTHONPATH on to the processes it starts for tests and benchmarks
    assert readers == ["bot/queues/celery/parts.py", "engine/settings.py"]


def test_the_tree_keeps_the_import_rules() -> None:
    problems = check(read_tree(REPO))
    assert not problems, "\n".join(problems)


def _with(module: str, source: str) -> list[str]:
    return check({**read_tree(REPO), module: source})


def test_the_rules_catch_what_they_forbid() -> None:
    # each of these is added to the real tree as one more module; each must be caught
    assert any("engine.models (rank 2) may not import engine.band" in p
               for p in _with("engine.models.bad", "def f():\n    from engine.band.score import Score\n"))
    assert any("may not import engine.compose" in p
               for p in _with("engine.music.bad", "from engine.compose.request import ComposeRequest\n"))
    assert any("bot.store (rank 2) may not import bot.queues" in p
               for p in _with("bot.store.bad", "import bot.queues.base\n"))
    assert any("only bot.ui imports discord" in p for p in _with("bot.service.bad", "import discord\n"))
    assert any("the bot never imports torch" in p for p in _with("bot.queues.bad", "import torch\n"))
    assert any("the engine never imports the bot" in p for p in _with("engine.band.bad", "from bot.ui import limits\n"))
    assert any("private name(s) _font" in p
               for p in _with("engine.media.bad", "from engine.media.layout import _font\n"))
    assert any(p.startswith("import circle: engine.music.bad <-> engine.music.chords")
               for p in check({**read_tree(REPO), "engine.music.bad": "import engine.music.chords\n",
                               "engine.music.chords": "import engine.music.bad\n"}))
    assert any("61 lines" in p for p in _with("engine.music.bad", "def f():\n" + "    x = 1\n" * 60))
    assert any("451 lines" in p for p in _with("engine.music.bad", "x = 1\n" * 451))


def test_every_package_names_its_public_api_and_each_name_resolves() -> None:
    import importlib

    for name in PACKAGES:
        package = importlib.import_module(name)
        assert package.__doc__ and package.__all__, name
        for public in package.__all__:
            assert getattr(package, public) is not None, f"{name}.{public}"


def test_tests_and_benchmarks_keep_the_size_limits_too() -> None:
    import ast

    from tests.imports import long_parts

    problems = []
    for path in sorted((REPO / "tests").rglob("*.py")) + sorted((REPO / "bench").glob("*.py")):
        source = path.read_text()
        problems += long_parts(str(path.relative_to(REPO)), source, ast.parse(source))
    assert not problems, "\n".join(problems)
