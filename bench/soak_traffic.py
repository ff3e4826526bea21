"""The simulated members of `bench/soak.py`: one seeded action at a time, through the stand-in.

`Traffic.act` picks an action by weight (`WEIGHTS`) and sends it without waiting for the bot's
answer (the probe reads the answers); `settle` waits until every interaction sent is acknowledged
(before a fault is injected), `drain` until every accepted job is settled in the database, and
`trim` drops the bytes of clips the stand-in already recorded, so the driver's own memory stays flat.
"""
from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

from engine.band.styles import BAND_CHOICES
from engine.media.render import FORMATS
from engine.models.conditioning import ERA_CHOICES
from engine.music.forms import FORM_CHOICES
from tests.bot.harness import Harness
from tests.bot.standin_components import buttons
from tests.helpers import combo_midi

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = {"compose": 30, "seeded": 4, "button": 14, "cancel": 5, "styles": 5, "help": 3, "autocomplete": 6,
           "admin": 3, "hostile": 3}
LENGTHS = ("10s", "15s", "20s", "30s")
HOSTILE = [  # option lists /compose refuses, in one line each
    [("style", "../../etc")], [("style", "jazz"), ("length", "99999h")], [("style", "jazz"), ("changes", "H7 Xmaj9 |||")],
    [("style", "jazz"), ("key", "Q minor")], [("style", "jazz"), ("tempo", 9999.0)], [("style", "@here")],
    [("style", "jazz"), ("without", "lead comping bass drums kazoo")], [("style", "x" * 150)],
    [("style", "jazz"), ("length", "-5s")], [("style", "folk"), ("form", "sonata")],
]


class Traffic:
    def __init__(self, h: Harness, rnd: random.Random, styles: tuple[str, ...]) -> None:
        self.h, self.rnd, self.style_names = h, rnd, styles
        self.members = [h.standin.add_user(f"member{i}") for i in range(12)]
        self.counts: Counter[str] = Counter()
        self.sent: list[Any] = []  # the InteractionRecords of job-making requests, oldest first
        self.admin_recs: list[tuple[str, Any]] = []  # (subcommand, its InteractionRecord)
        self.forms = 0
        self.installed = False
        self.swaps = 0

    def send(self, coro: Any) -> Any:
        return self.h.lt.run(coro)

    def act(self, progress: float) -> None:
        """One action; ``progress`` (0..1 of the run) schedules the install and the swaps."""
        if not self.installed and progress >= 0.05:
            self.install()
            return
        if self.installed and progress >= 0.1 + 0.12 * self.swaps:
            self.swap()
            return
        action = self.rnd.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        getattr(self, action)()
        self.counts[action] += 1

    # -- members -------------------------------------------------------------------------------

    def compose(self, attachment: tuple[str, bytes] | None = None) -> None:
        style, r = self.rnd.choice(self.style_names), self.rnd
        options: dict[str, Any] = {}
        if r.random() < 0.6:
            options["form"] = FORM_CHOICES[self.forms % len(FORM_CHOICES)]  # every form in turn
            self.forms += 1
        extra = {"tempo": r.choice([72.0, 110.0, 160.0]), "key": r.choice(["Bb", "F minor", "D"]),
                 "swing": r.choice([1.0, 2.0]), "era": r.choice(ERA_CHOICES), "band": r.choice(BAND_CHOICES),
                 "format": r.choice(FORMATS), "feel": r.choice(["performed", "grid"]), "without": "drums",
                 "seed": r.randrange(1000), "temperature": r.choice([0.8, 1.0, 1.2])}
        if style != "jazz":
            extra.pop("era")
        for name in r.sample(sorted(extra), r.choice([0, 0, 1, 2, 3])):
            options[name] = extra[name]
        user = r.choice(self.members)
        self.sent.append(self.h.compose(user, style=style, length=r.choice(LENGTHS), attachment=attachment, **options))

    def seeded(self) -> None:
        self.compose(attachment=("tune.mid", combo_midi()))

    def clips(self) -> list[dict]:
        return [m for m in list(self.h.standin.messages.values())
                if len(m.get("attachments") or []) >= 3 and "Another take" in buttons(m)]

    def button(self) -> None:
        clips = self.clips()
        if not clips:
            return self.styles()
        message = self.rnd.choice(clips[-5:] if self.rnd.random() < 0.7 else clips)  # recent, or any old one
        label = self.rnd.choice(["Another take", "Continue", "Variation"])
        custom_id = buttons(message)[label]["custom_id"]
        user = self.rnd.choice(self.members)
        presses = 2 if self.rnd.random() < 0.15 else 1  # a double press: two at once

        async def press() -> list:
            return await asyncio.gather(*[self.h.standin.send_component(message, custom_id, user)
                                          for _ in range(presses)])

        self.sent += self.send(press())
        return None

    def cancel(self) -> None:
        """A member asks for a clip and, once it says "queued", presses Cancel (sometimes twice at once)."""
        owner = self.rnd.choice(self.members)
        rec = self.h.compose(owner, style=self.rnd.choice(self.style_names), length="30s")
        self.sent.append(rec)
        deadline = time.monotonic() + 3
        while (message := self.h.standin.messages.get(str(rec.original_id))) is None or "Cancel" not in buttons(message):
            if time.monotonic() > deadline:  # refused, or its clip came first
                return
            time.sleep(0.02)
        custom_id = buttons(message)["Cancel"]["custom_id"]
        presses = 2 if self.rnd.random() < 0.3 else 1

        async def press() -> list:
            return await asyncio.gather(*[self.h.standin.send_component(message, custom_id, owner)
                                          for _ in range(presses)])

        self.send(press())

    def styles(self) -> None:
        self.send(self.h.standin.send_slash_command("styles", [], self.rnd.choice(self.members)))

    def help(self) -> None:
        self.send(self.h.standin.send_slash_command("help", [], self.rnd.choice(self.members)))

    def autocomplete(self) -> None:
        typed = self.rnd.choice(["", "ja", "f", "ba", "met", "zz"])
        self.send(self.h.standin.send_autocomplete("compose", [{"name": "style", "value": typed}], "style",
                                                   self.rnd.choice(self.members)))

    def hostile(self) -> None:
        if self.rnd.random() < 0.3:  # a junk file as a seed
            junk = bytes(self.rnd.randrange(256) for _ in range(2000))
            self.h.compose(self.rnd.choice(self.members), attachment=("tune.mid", junk))
            return
        options = [{"name": k, "value": v} for k, v in self.rnd.choice(HOSTILE)]
        self.send(self.h.standin.send_slash_command("compose", options, self.rnd.choice(self.members)))

    # -- the admin -----------------------------------------------------------------------------

    def admin(self) -> None:
        if self.rnd.random() < 0.5:
            self.admin_recs.append(("queue", self.h.admin_command(self.h.admin, "queue")))
        else:
            self.admin_recs.append(("audit", self.h.admin_command(self.h.admin, "audit", count=5)))

    def install(self) -> None:
        from engine.formats.pack import pack

        self.installed = True
        out = self.h.tmp / "jazz-b.zip"
        if not out.exists():
            pack(ROOT / "checkpoints" / "jazz", out)
        att = self.h.standin.add_attachment("jazz-b.zip", out.read_bytes())
        self.admin_recs.append(("install", self.h.admin_command(self.h.admin, "install", attachments={"archive": att},
                                                                name="jazz-b")))
        self.counts["install"] += 1

    def swap(self) -> None:
        self.swaps += 1
        self.admin_recs.append(("use", self.h.admin_command(self.h.admin, "use", style="jazz",
                                                            checkpoint="jazz-b" if self.swaps % 2 else "jazz")))
        self.counts["swap"] += 1

    def admin_outcomes(self) -> dict[str, str]:
        """Per admin subcommand: answers that did what was asked / sent (install and use answer ✅)."""
        done: Counter[str] = Counter()
        sent: Counter[str] = Counter()
        for sub, rec in self.admin_recs:
            sent[sub] += 1
            texts = [((e["json"] or {}).get("data") or e["json"] or {}).get("content") or ""
                     for e in self.h.standin.responses_for(rec)]
            if any(t.startswith("✅") for t in texts) or (sub in ("queue", "audit") and any(texts)):
                done[sub] += 1
        return {sub: f"{done[sub]}/{n}" for sub, n in sorted(sent.items())}

    # -- the driver's side ---------------------------------------------------------------------

    def settle(self, timeout: float) -> None:
        """Wait until every interaction sent so far is acknowledged, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while any(r.acked_at is None for r in list(self.h.standin.interactions.values())[-50:]):
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def drain(self, timeout: float) -> bool:
        """Wait until no job is open or owes its user a notice (polled); False if ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        sql = ("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running', 'done')"
               " OR (status = 'failed' AND notice_sent = 0)")
        while True:
            try:
                with sqlite3.connect(f"file:{self.h.tmp / 'chorus.db'}?mode=ro", uri=True, timeout=5) as con:
                    if con.execute(sql).fetchone()[0] == 0:
                        return True
            except sqlite3.Error:
                pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)

    def trim(self) -> None:
        """Forget the bytes of uploads the stand-in recorded more than a minute ago (sizes are kept)."""
        old = time.monotonic() - 60
        for event in self.h.standin.events:
            if event["time"] < old:
                for f in event["files"]:
                    f["data"] = b""
        for message in self.clips()[:-20]:  # the clips' files, as the bot uploaded them
            for att in message.get("attachments") or []:
                self.h.standin._files.pop(str(att.get("id")), None)  # noqa: SLF001 - the driver's own memory
        self.sent = self.sent[-200:]
