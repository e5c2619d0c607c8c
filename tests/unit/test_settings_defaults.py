"""Every settings default is written once (on ``Settings``, ``PromoPolicy`` or the adapter that owns it) and shown
as it is: docs/configuration.md's default column and the CLI's help say what ``Settings.from_env`` uses."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from domain.errors import ConfigurationError
from domain.policy import PromoPolicy
from entrypoints.cli.main import cli
from entrypoints.settings import POLICY_VARIABLES, Settings, documented_defaults

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `([A-Z0-9_]+)` \| ([^|]*) \|", re.MULTILINE)


def documented() -> dict[str, str]:
    """variable -> its default cell, from every table of docs/configuration.md."""
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    return {name: cell.strip() for name, cell in ROW.findall(text)}


def shown(value: Any) -> str:
    """A default as the docs write it (a tuple of networks comma-separated)."""
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def test_every_variable_read_is_documented_and_every_documented_one_is_read() -> None:
    assert set(documented()) == set(documented_defaults())


@pytest.mark.parametrize("name", sorted(documented_defaults()))
def test_the_documented_default_is_the_one_the_settings_use(name: str) -> None:
    default, cell = documented_defaults()[name], documented().get(name)
    assert cell is not None, f"docs/configuration.md does not list {name}"
    if default is None:
        assert not cell.startswith("`"), f"{name}: documented as {cell!r}, but it has no default"
    else:
        assert cell.startswith(f"`{shown(default)}`"), f"{name}: documented as {cell!r}, the settings use {default!r}"


def test_the_defaults_are_the_fields_defaults() -> None:
    """``from_env`` with nothing set is ``Settings()``: no default written a second time in the reading code."""
    assert Settings.from_env({"PROMO_SECRET_PEPPER": "p"}) == Settings(promo_secret_pepper="p")
    assert Settings().internal_ip_allowlist == (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))


@pytest.mark.parametrize("name", sorted(POLICY_VARIABLES))
def test_each_policy_variable_sets_its_field(name: str) -> None:
    field, maximum = POLICY_VARIABLES[name]
    value = getattr(PromoPolicy(), field) + 1
    assert getattr(Settings.from_env({"PROMO_SECRET_PEPPER": "p", name: str(value)}).policy, field) == value
    if maximum is not None:
        with pytest.raises(ConfigurationError, match=name):
            Settings.from_env({"PROMO_SECRET_PEPPER": "p", name: str(maximum + 1)})


def test_the_cli_help_shows_the_settings_default() -> None:
    out = CliRunner().invoke(cli, ["payments", "reconcile", "--help"], terminal_width=200).output
    default = PromoPolicy().reconciliation_window_hours
    assert f"PAYMENTS_RECONCILIATION_WINDOW_HOURS ({default})" in " ".join(out.split())
