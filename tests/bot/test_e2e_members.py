"""End to end, what members see besides the buttons: options that explain themselves (as synced
to Discord), /help, the Continue modal, and files named for the clip."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.bot.harness import Harness
from tests.helpers import REPO, combo_midi

pytestmark = pytest.mark.slow  # real processes end to end: `make test-fast` leaves these out

EPHEMERAL = 64
MODAL = 9


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path):
    h = Harness(tmp_path_factory.mktemp("bot"), {"jazz": tiny_checkpoint, "bach": REPO / "checkpoints" / "bach"},
                CHORUS_MAX_TEMPO="280")
    h.start_bot()
    yield h
    h.close()


def synced(h: Harness, name: str, kind: int = 1) -> dict:
    (command,) = [c for c in h.standin.commands[h.standin.guild_id] if c["name"] == name and c["type"] == kind]
    return command


def ephemeral_line(h: Harness, rec) -> str:
    data = h.wait(interaction=rec, kind="callback")["json"].get("data", {})
    assert data.get("flags", 0) & EPHEMERAL, f"not ephemeral: {data}"
    return data["content"]


def test_compose_options_show_their_ranges_and_choices(harness: Harness) -> None:
    options = {o["name"]: o for o in synced(harness, "compose")["options"]}
    assert (options["tempo"]["min_value"], options["tempo"]["max_value"]) == (60, 280)  # the settings' limits
    assert (options["temperature"]["min_value"], options["temperature"]["max_value"]) == (0.1, 2.0)
    assert options["seed"]["min_value"] == 0 and options["seed"]["type"] == 4
    assert (options["swing"]["min_value"], options["swing"]["max_value"]) == (1.0, 3.0)
    for name in ("style", "length", "key"):  # autocomplete: a typed value still works
        assert options[name].get("autocomplete") is True, name
    assert [c["value"] for c in options["format"]["choices"]] == ["ogg", "mp3", "flac"]
    assert {c["value"] for c in options["form"]["choices"]} >= {"blues", "aaba"}
    assert "drums" in options["without"]["description"]
    assert all(o.get("description") for o in options.values())


def autocomplete(h: Harness, options: dict[str, str], focused: str) -> list[str]:
    opts = [{"name": k, "value": v} for k, v in options.items()]
    rec = h.lt.run(h.standin.send_autocomplete("compose", opts, focused, h.users[0]))
    answer = h.wait(interaction=rec, kind="callback")["json"]
    assert answer["type"] == 8 and rec.ack_seconds is not None and rec.ack_seconds < 3.0
    return [c["value"] for c in answer["data"]["choices"]]


def test_length_and_key_are_suggested_and_a_typed_value_is_kept(harness: Harness) -> None:
    offered = autocomplete(harness, {"style": "jazz", "length": ""}, "length")
    assert offered[:3] == ["10s", "20s", "30s"] and "3m" in offered
    assert autocomplete(harness, {"style": "jazz", "length": "45"}, "length")[0] == "45"
    keys = autocomplete(harness, {"style": "jazz", "key": "Bb"}, "key")
    assert keys[0] == "Bb" and {"Bb major", "Bb minor"} <= set(keys)
    assert autocomplete(harness, {"style": "ja"}, "style") == ["jazz"]


def test_help_says_what_how_and_the_limits(harness: Harness) -> None:
    assert synced(harness, "help")
    text = ephemeral_line(harness, harness.lt.run(harness.standin.send_slash_command("help", [], harness.users[0])))
    assert "/compose style:jazz" in text and "60–280 bpm" in text and "Dm7 G7 | Cmaj7" in text
    assert len(text) <= 2000


def test_styles_are_written_for_musicians(harness: Harness) -> None:
    text = ephemeral_line(harness, harness.lt.run(harness.standin.send_slash_command("styles", [], harness.users[0])))
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("**jazz**"))
    first, band, numbers = lines[at:at + 3]
    assert first.startswith("**jazz**: a small-group jazz") and "walking upright bass" in band
    assert "130–200 bpm" in band and "NLL" in numbers


def test_the_continue_modal_asks_style_length_and_tempo(harness: Harness) -> None:
    att = harness.standin.add_attachment("posted.mid", combo_midi())
    message = harness.standin.add_message(None, harness.users[1], "my tune", attachments=[att])
    menu = harness.lt.run(harness.standin.send_message_command("Continue with Chorus", message, harness.users[2]))
    harness.wait(interaction=menu, kind="callback")
    assert menu.callback_type == MODAL and menu.ack_seconds is not None and menu.ack_seconds < 3.0
    modal = harness.standin.modal_of(menu)
    assert modal["title"] == "Continue with Chorus"
    bad = harness.lt.run(harness.standin.submit_modal(menu, {"Tempo in bpm (blank: keep the file's)": "fast"},
                                                      harness.users[2]))
    assert "tempo 'fast' is not a number" in ephemeral_line(harness, bad)
    rec = harness.lt.run(harness.standin.submit_modal(
        menu, {"Length (e.g. 30s, 1m)": "10s", "Tempo in bpm (blank: keep the file's)": "100"}, harness.users[2]))
    clip = harness.clip_of(rec)
    fields = {f["name"]: f["value"] for f in clip["json"]["embeds"][0]["fields"]}
    assert fields["Continuation"] == "the new music starts at bar 5 of the clip" and "100" in fields["Tempo"]
    assert harness.clips_seen(rec) == 1


def test_files_are_named_for_the_clip_in_the_chosen_format(harness: Harness) -> None:
    rec = harness.compose(harness.users[3], length="6s", tempo=150.0, format="mp3", without="drums")
    clip = harness.clip_of(rec)
    names = sorted(f["filename"] for f in clip["files"])
    stem = names[0].rsplit(".", 1)[0]
    fields = {f["name"]: f["value"] for f in clip["json"]["embeds"][0]["fields"]}
    tonic, mode = fields["Key"].split(",")[0].split()  # the clip's key as played: "Bb minor" -> Bbm
    key = tonic.replace("#", "s") + ("m" if mode == "minor" else "")
    assert re.fullmatch(rf"chorus-jazz-{key}-150bpm-\d{{10}}", stem), names
    assert names == [f"{stem}.mid", f"{stem}.mp3", f"{stem}.png"]
    embed = clip["json"]["embeds"][0]
    assert embed["image"]["url"] == f"attachment://{stem}.png"
    assert "format:mp3" in embed["footer"]["text"] and "without:drums" in embed["footer"]["text"]
    (message,) = harness.standin.messages_for(rec)
    assert sorted(a["filename"] for a in message["attachments"]) == names


def test_an_unknown_part_to_leave_out_is_named(harness: Harness) -> None:
    rec = harness.compose(harness.users[4], length="6s", without="drums tuba")
    assert "tuba is not a part" in ephemeral_line(harness, rec)


def test_compose_bach_posts_a_chorale_and_styles_describe_it(harness: Harness) -> None:
    """`/compose bach 30s` with the shipped bach checkpoint: the organ's four voices, 60-90 bpm;
    `/styles` says what the chorale style is."""
    rec = harness.compose(harness.users[3], style="bach", length="30s", seed=2026)
    clip = harness.clip_of(rec)
    fields = {f["name"]: f["value"] for f in clip["json"]["embeds"][0]["fields"]}
    assert fields["Style"] == "bach" and fields["Checkpoint"].startswith("bach ")
    assert 60 <= int(re.search(r"\d+", fields["Tempo"]).group()) <= 90
    assert {f["filename"].rsplit(".", 1)[-1] for f in clip["files"]} == {"ogg", "mid", "png"}
    text = ephemeral_line(harness, harness.lt.run(harness.standin.send_slash_command("styles", [], harness.users[0])))
    bach = text[text.index("**bach**"):text.index("**jazz**")]
    assert "four-part chorale" in bach and "church organ; `band:` organ, strings" in bach
    assert "60–90 bpm, 4/4, 3/4." in bach  # each meter once
