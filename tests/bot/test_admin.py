"""Who counts as a Chorus admin (bot/cogs/admin.py `is_admin`)."""
from __future__ import annotations

from types import SimpleNamespace

from bot.cogs.admin import is_admin

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
