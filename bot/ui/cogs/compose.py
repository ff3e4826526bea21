"""/compose, /help, /styles and the "Continue with Chorus" message command (with its modal).

The modal's ``custom_id`` names the message whose MIDI file it continues
(``chorus:continue:<channel>:<message>:<nonce>``). A submission this process did not open the
modal for (it was opened before a restart, or past its 10-minute timeout) is routed by that id
alone (`ComposeCog.on_interaction`): the message is fetched again and the values typed are used.
"""
from __future__ import annotations

import logging
import re
import secrets
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.service.compose import ComposeService
from bot.ui import guide, limits
from bot.ui.accept import accept, accept_seeded
from bot.ui.tree import report
from engine.band.arrange import PARTS
from engine.band.styles import BAND_CHOICES
from engine.compose.request import FEELS, RequestError, parse_length
from engine.media.render import FORMATS
from engine.models.conditioning import ERA_CHOICES
from engine.music.chords import PITCH_NAMES
from engine.music.forms import FORM_CHOICES
from engine.settings import Settings

log = logging.getLogger(__name__)
MIDI_SUFFIXES = (".mid", ".midi")
DEFAULT_LENGTH = "30s"
LENGTHS = ("10s", "20s", "30s", "45s", "1m", "1m30s", "2m", "3m")
KEYS = tuple(f"{p} {m}" for m in ("major", "minor") for p in PITCH_NAMES)
SEED_MAX = 2**53  # Discord's largest integer option
CONTINUE_ID = re.compile(r"chorus:continue:(?P<channel>\d{1,20}):(?P<message>\d{1,20}):[0-9a-f]{8}")
# Discord shows these ranges; the decorator needs constants, so the settings' own limits replace
# them when the cog is made (`_apply_ranges`), and `ComposeRequest.build` checks them again.
Tempo = app_commands.Range[float, Settings.min_tempo, Settings.max_tempo]
Temperature = app_commands.Range[float, Settings.min_temperature, Settings.max_temperature]
Seed = app_commands.Range[int, 0, SEED_MAX]
Swing = app_commands.Range[float, 1.0, 3.0]


def _choices(values: tuple[str, ...] | list[str], current: str) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=v, value=v) for v in values if current.lower() in v.lower()][:25]


def parts_without(text: str | None) -> frozenset[str] | None:
    """The parts to play when ``text`` names some to leave out (``drums bass``).

    Raises:
        RequestError: an unknown part, named.
    """
    if not text:
        return None
    left_out = set(text.replace(",", " ").lower().split())
    if unknown := sorted(left_out - set(PARTS)):
        raise RequestError(f"without: {', '.join(unknown)} is not a part; the parts are {', '.join(PARTS)}")
    return frozenset(PARTS) - left_out


def midi_of(message: discord.Message) -> discord.Attachment:
    """The message's first MIDI attachment.

    Raises:
        RequestError: it has none.
    """
    attachment = next((a for a in message.attachments if a.filename.lower().endswith(MIDI_SUFFIXES)), None)
    if attachment is None:
        raise RequestError("that message has no .mid attachment to continue")
    return attachment


def typed_values(data: Any) -> dict[str, str]:
    """A modal submission's text inputs by ``custom_id`` (in action rows or labels)."""
    out: dict[str, str] = {}
    for row in (data or {}).get("components") or []:
        for c in [*(row.get("components") or []), *([row["component"]] if isinstance(row.get("component"), dict) else [])]:
            if isinstance(c, dict) and "custom_id" in c and isinstance(c.get("value"), str):
                out[c["custom_id"]] = c["value"]
    return out


class ContinueModal(discord.ui.Modal, title="Continue with Chorus"):
    """Style, length and tempo for continuing a posted MIDI file."""

    def __init__(self, cog: ComposeCog, message: discord.Message, attachment: discord.Attachment, style: str) -> None:
        super().__init__(timeout=600, custom_id=f"chorus:continue:{message.channel.id}:{message.id}:{secrets.token_hex(4)}")
        self.cog, self.attachment = cog, attachment
        self.style = discord.ui.TextInput(label="Style", default=style, max_length=40, custom_id="style")
        self.length = discord.ui.TextInput(label="Length (e.g. 30s, 1m)", default=DEFAULT_LENGTH, max_length=12,
                                           custom_id="length")
        self.tempo = discord.ui.TextInput(label="Tempo in bpm (blank: keep the file's)", required=False,
                                          max_length=6, custom_id="tempo")
        for item in (self.style, self.length, self.tempo):
            self.add_item(item)
        cog.open_modals.add(self.custom_id)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.cog.continue_file(interaction, self.attachment, self.style.value, self.length.value,
                                     self.tempo.value)
        # done: discord.py forgets the modal now; after an error it stays open (and ours) until its timeout
        self.cog.open_modals.discard(self.custom_id)

    async def on_timeout(self) -> None:  # a later submission is routed by its custom_id alone
        self.cog.open_modals.discard(self.custom_id)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        await report(interaction, error, "the Continue modal")


class ComposeCog(commands.Cog):
    def __init__(self, bot: commands.Bot, service: ComposeService) -> None:
        self.bot = bot
        self.service = service
        self.menu = app_commands.ContextMenu(name="Continue with Chorus", callback=self.continue_menu)
        self.open_modals: set[str] = set()  # custom ids of the Continue modals this process has open
        bot.tree.add_command(self.menu)
        self._apply_ranges()

    def _apply_ranges(self) -> None:
        """Show the settings' limits (which an operator may change) as the options' ranges."""
        s = self.service.settings
        for name, low, high in (("tempo", s.min_tempo, s.max_tempo),
                                ("temperature", s.min_temperature, s.max_temperature)):
            param = self.compose._params[name]  # noqa: SLF001 - discord.py keeps no public setter
            param.min_value, param.max_value = low, high

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def style_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return _choices(self.service.styles(), current)

    async def length_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        s = self.service.settings
        offered = [v for v in LENGTHS if s.min_seconds <= parse_length(v) <= s.max_seconds]
        typed = [current.strip()] if current.strip() and current.strip() not in offered else []
        return _choices(typed + offered, "" if typed else current)

    async def key_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        typed = [current.strip()] if current.strip() else []
        return _choices(typed + [k for k in KEYS if k.lower().startswith(current.strip().lower())], "")

    @app_commands.command(name="compose", description="Compose a clip: audio, MIDI and a picture of the notes")
    @app_commands.describe(style="jazz, folk, ...", length="e.g. 30s, 1m30s, 90 (pick one or type your own)",
                           seed_midi="a MIDI file to continue", tempo="beats per minute",
                           changes="chords per bar, e.g. Dm7 G7 Cmaj7 Cmaj7, or | between bars: Dm7 G7 | Cmaj7",
                           temperature="lower is safer, higher is wilder", seed="repeat a clip exactly",
                           form="the song form (default: the style's)", key="e.g. Bb or F minor (default: the style's keys)",
                           swing="swing ratio: 1 straight, 2 triplet feel, up to 3 (default: by tempo)",
                           era="play it like this era of jazz (default: the mix of all)",
                           band="another band of the style: strings for bach (default: the style's own)",
                           format="the audio file: ogg (default), mp3 or flac",
                           feel="performed (default: as soloists play) or grid (exactly as composed, for notation)",
                           without=f"parts to leave out, e.g. drums bass (of {', '.join(PARTS)})")
    @app_commands.choices(form=[app_commands.Choice(name=f, value=f) for f in FORM_CHOICES],
                          era=[app_commands.Choice(name=e, value=e) for e in ERA_CHOICES],
                          band=[app_commands.Choice(name=b, value=b) for b in BAND_CHOICES],
                          format=[app_commands.Choice(name=f, value=f) for f in FORMATS],
                          feel=[app_commands.Choice(name=f, value=f) for f in FEELS])
    @app_commands.autocomplete(style=style_autocomplete, length=length_autocomplete, key=key_autocomplete)
    async def compose(self, interaction: discord.Interaction, style: str, length: str = DEFAULT_LENGTH,
                      seed_midi: discord.Attachment | None = None, tempo: Tempo | None = None,
                      changes: str | None = None, temperature: Temperature | None = None, seed: Seed | None = None,
                      form: str | None = None, key: str | None = None, swing: Swing | None = None,
                      era: str | None = None, band: str | None = None, format: str = "ogg",  # noqa: A002 - the option's name
                      without: str | None = None, feel: str | None = None) -> None:
        req = self.service.request(style, length, tempo=tempo, changes=changes, temperature=temperature, seed=seed,
                                   form=form, key=key, swing=swing, era=era, band=band, audio_format=format,
                                   parts=parts_without(without), seeded=seed_midi is not None, feel=feel)
        if seed_midi is None:
            await accept(self.service, interaction, req)
        else:  # after the cheap checks, so a bad value is refused at once, before any download
            await accept_seeded(self.service, interaction, req, seed_midi)

    async def continue_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        attachment = midi_of(message)
        self.service.seeds.check_declared_size(attachment.size)
        styles = self.service.styles()
        if not styles:
            raise RequestError("no style is installed")
        await interaction.response.send_modal(ContinueModal(self, message, attachment,
                                                            "jazz" if "jazz" in styles else styles[0]))

    async def continue_file(self, interaction: discord.Interaction, attachment: discord.Attachment, style: str,
                            length: str, tempo_text: str) -> None:
        """Accept the Continue modal's values for ``attachment``."""
        text = tempo_text.strip()
        try:
            tempo = float(text) if text else None
        except ValueError:
            raise RequestError(f"tempo {text!r} is not a number of beats per minute") from None
        req = self.service.request(style, length, tempo=tempo)
        await accept_seeded(self.service, interaction, req, attachment)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A Continue modal submitted that this process did not open (before a restart, or timed out):
        fetch its message again by the ids in its ``custom_id`` and accept the values typed."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        found = CONTINUE_ID.fullmatch(str((interaction.data or {}).get("custom_id", "")))
        if found is None or found.group(0) in self.open_modals:
            return
        try:
            channel = self.bot.get_partial_messageable(int(found["channel"]), guild_id=interaction.guild_id)
            try:
                message = await channel.fetch_message(int(found["message"]))
            except discord.NotFound:
                raise RequestError("the message with that MIDI file is gone; post it again") from None
            except discord.HTTPException as exc:  # no access any more, Discord busy: one line saying what to do
                log.info("could not fetch message %s for a Continue modal: %s", found["message"], exc)
                raise RequestError("could not read that message again; use Continue with Chorus on it once more") from None
            values = typed_values(interaction.data)
            await self.continue_file(interaction, midi_of(message), values.get("style", ""),
                                     values.get("length", DEFAULT_LENGTH), values.get("tempo", ""))
        except Exception as exc:  # the one error path, as for the modal itself
            await report(interaction, exc, "the Continue modal (opened before a restart)")

    @app_commands.command(name="help", description="What Chorus does, an example, the limits and how to write changes")
    async def help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(guide.help_text(self.service.settings), ephemeral=True)

    @app_commands.command(name="styles", description="The styles Chorus plays: their sound, band and tempo")
    async def styles(self, interaction: discord.Interaction) -> None:
        text = guide.styles_text(self.service.catalog.styles())
        await interaction.response.send_message(limits.content(text), ephemeral=True)


