"""The bot's process stays small: it never imports torch, and settings have one reader."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import fields

from bot.settings import BotSettings, Secret
from engine.settings import Settings
from tests.helpers import REPO

# what `chorus serve` and the bot application import, with both queue backends
BOT_PROCESS = """
import sys
import bot.app, bot.cli, bot.celery_queue, bot.delivery, bot.tree
bot.cli.build_parser()
from bot.settings import BotSettings
bot.app.make_queue(BotSettings(queue="local"))
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
    # localparts passes PATH and PYTHONPATH on to the processes it starts for tests and benchmarks
    assert readers == ["bot/localparts.py", "engine/settings.py"]
