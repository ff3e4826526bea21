"""Who counts as a Chorus admin (bot/ui/cogs/admin.py `is_admin`)."""
from __future__ import annotations

from types import SimpleNamespace

from bot.ui.cogs.admin import is_admin

GUILD = 900
ADMIN_ROLE = 901


def interaction(user_id: int, *role_ids: int):
    """A guild interaction whose member holds @everyone (id = the guild's) and ``role_ids``."""
    roles = [SimpleNamespace(id=GUILD)] + [SimpleNamespace(id=r) for r in role_ids]
    return SimpleNamespace(user=SimpleNamespace(id=user_id, roles=roles), guild_id=GUILD)


def test_listed_users_and_roles_are_admins() -> None:
    assert is_admin(interaction(1), frozenset({1}), frozenset())
    assert is_admin(interaction(2, ADMIN_ROLE), frozenset(), frozenset({ADMIN_ROLE}))
    assert not is_admin(interaction(3, 902), frozenset({1}), frozenset({ADMIN_ROLE}))


def test_the_guild_id_in_the_admin_roles_makes_no_member_an_admin() -> None:
    """@everyone's role id is the guild id: listing it must not make every member an admin."""
    roles = frozenset({GUILD, ADMIN_ROLE})
    assert not is_admin(interaction(3), frozenset(), roles)
    assert not is_admin(interaction(3, 902), frozenset(), roles)
    assert is_admin(interaction(4, ADMIN_ROLE), frozenset(), roles)


def test_a_user_without_roles_is_not_an_admin() -> None:
    dm = SimpleNamespace(user=SimpleNamespace(id=5), guild_id=None)
    assert not is_admin(dm, frozenset(), frozenset({ADMIN_ROLE}))


def test_the_audit_shows_whole_lines_newest_first_within_the_limit() -> None:
    from bot.ui.cogs.admin import audit_text

    entries = [{"at": 1700000000 + i, "user_id": 7, "action": "cancel", "detail": f"{{'job': 'j{i}'}}",
                "allowed": i % 2} for i in range(50, 0, -1)]
    text = audit_text(entries, limit=300)
    lines = text.splitlines()
    assert lines[0] == "⛔ <t:1700000050:f> <@7> cancel {'job': 'j50'}"
    assert lines[1].startswith("✅ <t:1700000049:f>") and len(text) <= 300 and len(lines) < 50
    assert audit_text([]) == "The audit log is empty."
    assert audit_text([{"at": 1, "user_id": 2, "action": "queue", "detail": "{}", "allowed": 1}]) == "✅ <t:1:f> <@2> queue"
