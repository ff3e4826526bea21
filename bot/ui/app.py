"""The Discord bot: wiring of settings, database, queue, catalog, service and cogs."""
from __future__ import annotations

import asyncio
import faulthandler
import logging

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot import preflight
from bot.memory import return_large_buffers
from bot.queues.base import JobQueue
from bot.queues.local import LocalQueue
from bot.service.compose import ComposeService
from bot.settings import BotSettings, SettingsError
from bot.store.catalog import Catalog
from bot.store.db import Store
from bot.ui.cogs.admin import AdminCog
from bot.ui.cogs.compose import ComposeCog
from bot.ui.cogs.jam import JamCog
from bot.ui.delivery import DiscordDeliverer
from bot.ui.tree import ChorusTree
from bot.ui.views import ClipButton

log = logging.getLogger(__name__)


def make_queue(settings: BotSettings) -> JobQueue:
    if settings.queue == "celery":
        from bot.queues.celery.queue import CeleryQueue

        return CeleryQueue(settings)
    if settings.queue != "local":
        raise SettingsError(f"CHORUS_QUEUE must be local or celery, got {settings.queue!r}")
    return LocalQueue(settings, workers=settings.workers, job_timeout_s=settings.job_timeout_s,
                      batch_max=settings.batch_max, warm_styles=settings.warm_styles)


def point_at_api(settings: BotSettings) -> None:
    """Use another Discord API (the tests' stand-in) when the settings say so."""
    if settings.discord_api_base:
        import yarl

        discord.http.Route.BASE = settings.discord_api_base.rstrip("/")
        if settings.discord_gateway:
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway)


class LoopMonitor:
    """Measures how late the event loop wakes up: its longest stall tells whether anything blocks it.

    With ``report_s`` it also logs the longest stall of each ``report_s`` seconds (a soak reads those),
    and a stall past ``dump_after`` seconds writes every thread's stack to stderr while it lasts
    (`faulthandler`'s watchdog thread, which needs no GIL), to show what held the loop.
    """

    def __init__(self, interval: float = 0.05, report_s: float = 0.0, dump_after: float = 0.2) -> None:
        self.interval = interval
        self.report_s = report_s
        self.dump_after = dump_after if report_s else 0.0
        self.max_stall = 0.0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-monitor")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        window, since = 0.0, loop.time()
        while True:
            t = loop.time()
            if self.dump_after:
                faulthandler.dump_traceback_later(self.interval + self.dump_after, exit=False)
            await asyncio.sleep(self.interval)
            if self.dump_after:
                faulthandler.cancel_dump_traceback_later()
            stall = loop.time() - t - self.interval
            self.max_stall, window = max(self.max_stall, stall), max(window, stall)
            if self.report_s and loop.time() - since >= self.report_s:
                log.info("event loop stall: longest %.1f ms in the last %.0f s", window * 1000, loop.time() - since)
                window, since = 0.0, loop.time()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.dump_after:
            faulthandler.cancel_dump_traceback_later()


def warn_guild_roles(ids: set[int] | frozenset[int]) -> None:
    log.warning("CHORUS_ADMIN_ROLE_IDS holds the guild id %s: that is @everyone's role, so it is ignored"
                " (name a real admin role instead)", ", ".join(map(str, sorted(ids))))


SYNCED_GUILDS = "dev_guilds_synced"  # flags table: guild ids that got a copy of the commands


async def sync_commands(tree: app_commands.CommandTree, store: Store, dev_guild_ids: frozenset[int]) -> None:
    """Register the slash commands: in each CHORUS_DEV_GUILD_IDS guild (at once), else globally.

    The guilds synced before are remembered in the database; one no longer listed (or all of
    them, once the list is emptied for global commands) has its copy removed, so no member sees
    every command twice.
    """
    before = {int(x) for x in (await store.flag(SYNCED_GUILDS)).split(",") if x}
    for gid in sorted(dev_guild_ids):
        guild = discord.Object(gid)
        tree.copy_global_to(guild=guild)
        await tree.sync(guild=guild)
    if not dev_guild_ids:
        await tree.sync()
    kept = set(dev_guild_ids)
    for gid in sorted(before - kept):
        guild = discord.Object(gid)
        tree.clear_commands(guild=guild)
        try:
            await tree.sync(guild=guild)
            log.info("removed the development copy of the commands from guild %s", gid)
        except discord.Forbidden:  # the bot left that guild: its commands went with it
            log.info("guild %s is out of reach; its development commands left with the bot", gid)
        except discord.HTTPException as exc:
            log.warning("could not remove the development commands from guild %s (tried again next start): %s", gid, exc)
            kept.add(gid)
    await store.set_flag(SYNCED_GUILDS, ",".join(map(str, sorted(kept))))


class ChorusBot(commands.Bot):
    def __init__(self, settings: BotSettings, **kwargs: object) -> None:
        intents = discord.Intents.default()
        intents.message_content = False  # context menus and options carry what we need
        # No message pings anyone unless it says so; deliveries allow the requesting user only.
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, tree_cls=ChorusTree,
                         help_command=None, allowed_mentions=discord.AllowedMentions.none(), **kwargs)
        self.settings = settings
        self.service: ComposeService | None = None
        self.loop_monitor = LoopMonitor(report_s=settings.loop_report_s)
        self._housekeeping: asyncio.Task | None = None

    async def setup_hook(self) -> None:
        self.loop_monitor.start()
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        store = await Store.open(s.db_path)
        queue = make_queue(s)
        service = ComposeService(s, store, queue, Catalog(s.checkpoints_dir, s.max_checkpoint_bytes), s.data_dir)
        await service.load_state()
        service.deliverer = DiscordDeliverer(self, s.upload_limit_bytes)
        self.service = service
        await service.seeds.start()
        await queue.start()
        await self.add_cog(ComposeCog(self, service))
        await self.add_cog(AdminCog(self, service))
        await self.add_cog(JamCog(self, service))
        self.add_dynamic_items(ClipButton)  # buttons under clips posted before a restart work too
        await sync_commands(self.tree, store, s.dev_guild_ids)
        counts = await service.recover()
        self._housekeeping = asyncio.create_task(service.housekeeping(), name="housekeeping")
        if s.admin_role_ids:
            log.info("CHORUS_ADMIN_ROLE_IDS members who are not server administrators see /chorus-admin once a server"
                     " admin adds their role under Server Settings → Integrations → Chorus → /chorus-admin")
        if s.admin_role_ids & s.dev_guild_ids:
            warn_guild_roles(s.admin_role_ids & s.dev_guild_ids)
        log.info("Chorus ready: styles %s, recovered %s", ", ".join(service.styles()) or "none", counts)

    async def on_ready(self) -> None:
        if found := self.settings.admin_role_ids & {g.id for g in self.guilds}:
            warn_guild_roles(found)

    async def close(self) -> None:
        self.loop_monitor.stop()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        log.info("event loop longest stall: %.1f ms", self.loop_monitor.max_stall * 1000)
        if self.service is not None:
            await self.service.queue.stop()
            await self.service.seeds.close()
            await self.service.store.close()
        await super().close()


class DiscordUnreachable(Exception):
    """Discord's API did not answer at startup: not a setting to fix, so ``chorus serve`` exits 1 (retry)."""


def serve(settings: BotSettings) -> None:
    """Run the bot until interrupted (``chorus serve``)."""
    settings.require("discord_token")
    return_large_buffers()
    preflight.warn(settings)
    point_at_api(settings)
    try:
        asyncio.run(_run(ChorusBot(settings), str(settings.discord_token)))
    except aiohttp.ClientConnectionError as exc:  # DNS, refused, reset: a supervisor may try again
        raise DiscordUnreachable(f"cannot reach Discord's API ({exc}); check the network") from exc
    except discord.LoginFailure as exc:
        raise SettingsError("DISCORD_TOKEN was refused by Discord (wrong or revoked): copy a new one from the"
                            " developer portal (your application → Bot → Reset Token) into .env") from exc


async def _run(bot: ChorusBot, token: str) -> None:
    """Run until the bot stops or SIGTERM/SIGINT arrives; then close cleanly (workers, database)."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with bot:
        runner = asyncio.create_task(bot.start(token))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if runner in done:
            runner.result()  # a login failure and the like: raise it
        else:
            await bot.close()
            runner.cancel()
