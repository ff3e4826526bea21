"""deploy/: the systemd units parse, carry what a service needs, and pass ``systemd-analyze verify``.

``make test`` installs systemd (TEST_PACKAGES), so verify runs in CI; on a machine without it the
INI checks still run and the verify test fails with a line saying what to install.
"""
from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

UNITS = {"chorus-bot.service": "serve", "chorus-worker@.service": "worker"}


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((REPO / "deploy" / name).read_text())
    return parser


@pytest.mark.parametrize("name", sorted(UNITS))
def test_each_unit_has_what_a_service_needs(name: str) -> None:
    u = unit(name)
    assert u.sections() == ["Unit", "Service", "Install"]
    s = u["Service"]
    assert s["Restart"] == "always"
    assert s["WorkingDirectory"] == "/opt/chorus" and s["EnvironmentFile"] == "/opt/chorus/.env"
    assert s["Environment"] == "CHORUS_HOME=/opt/chorus"
    assert s["ExecStart"].startswith(f"/opt/chorus/.venv/bin/chorus {UNITS[name]}")
    assert u["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.fail("systemd-analyze is not installed: `make test` installs it (apt package systemd)")
    chorus = Path(sys.executable).parent / "chorus"
    assert chorus.is_file(), f"{chorus} is missing: install the project into this venv (make setup)"
    for name in UNITS:
        # the paths of this checkout, so that verify finds the commands; an instance for the template
        text = (REPO / "deploy" / name).read_text().replace("/opt/chorus/.venv/bin/chorus", str(chorus))
        (tmp_path / name.replace("@.", "@1.")).write_text(text.replace("/opt/chorus", str(REPO)))
    files = sorted(str(p) for p in tmp_path.iterdir())
    out = subprocess.run([tool, "verify", "--man=no", *files], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert (out.returncode, out.stderr.strip()) == (0, ""), out.stderr
