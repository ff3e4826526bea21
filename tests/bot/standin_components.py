"""The stand-in's message components and modals: button presses and modal submits, as Discord
sends them, and what the bot answered (callbacks 6/7 update the pressed message, 9 opens a modal).

Mixed into `tests.bot.standin.DiscordStandIn`; nothing here imports discord.py.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.bot.standin import InteractionRecord

Json = dict[str, Any]
BUTTON, TEXT_INPUT = 2, 4


def walk(components: list[Json]) -> Iterator[Json]:
    """Every component, rows and labels opened (``components`` lists, a label's ``component``)."""
    for c in components:
        yield c
        yield from walk(c.get("components") or [])
        if isinstance(c.get("component"), dict):
            yield from walk([c["component"]])


def buttons(message: Json) -> dict[str, Json]:
    """A message's buttons by label."""
    return {c.get("label", ""): c for c in walk(message.get("components") or []) if c.get("type") == BUTTON}


class ComponentsMixin:
    """`send_component` and `submit_modal` for `DiscordStandIn` (which provides ``_dispatch``)."""

    messages: dict[str, Json]
    events: list[Json]

    async def send_component(self, message: Json, custom_id: str, user: Json) -> InteractionRecord:
        """Press the button ``custom_id`` on ``message`` (a stored message dict) as ``user``.

        Raises:
            LookupError: the message has no such button (now).
        """
        current = self.messages.get(str(message["id"]), message)
        if not any(c.get("custom_id") == custom_id for c in walk(current.get("components") or [])):
            raise LookupError(f"message {message['id']} has no component {custom_id!r}")
        data = {"custom_id": custom_id, "component_type": BUTTON}
        return await self._dispatch(3, data, user, None, custom_id, message=current)  # type: ignore[attr-defined]

    def modal_of(self, record: InteractionRecord) -> Json:
        """The modal the bot opened for ``record`` (its type-9 callback's data).

        Raises:
            LookupError: no modal was opened.
        """
        for e in self.events:
            if e["interaction_id"] == record.id and e["kind"] == "callback" and (e["json"] or {}).get("type") == 9:
                return e["json"]["data"]
        raise LookupError(f"interaction {record.id} opened no modal")

    async def submit_modal(self, record: InteractionRecord, values: dict[str, str], user: Json) -> InteractionRecord:
        """Submit the modal opened for ``record``, its text inputs filled by label (others left as they are)."""
        modal = self.modal_of(record)

        def filled(c: Json) -> Json:
            c = dict(c)
            if c.get("type") == TEXT_INPUT:
                c = {"type": TEXT_INPUT, "custom_id": c["custom_id"],
                     "value": values.get(c.get("label", ""), c.get("value") or "")}
            if "components" in c:
                c["components"] = [filled(x) for x in c["components"]]
            if isinstance(c.get("component"), dict):
                c["component"] = filled(c["component"])
            return c

        def labelled(c: Json) -> Json:  # a text input inside a label takes the label's text
            if isinstance(c.get("component"), dict) and c.get("label"):
                c = {**c, "component": {**c["component"], "label": c["label"]}}
            return c

        components = [filled(labelled(c)) for c in modal.get("components") or []]
        data = {"custom_id": modal["custom_id"], "components": components}
        channel = self.channels.get(record.payload["channel_id"])  # type: ignore[attr-defined]
        return await self._dispatch(5, data, user, channel, modal["custom_id"])  # type: ignore[attr-defined]
