"""Every config file kind refuses unknown keys, wrong types and missing keys in one line
naming the file, the key and what was expected, as a usage error (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneagent.config import ConfigError, load_config
from phoneagent.errors import EXIT_USAGE
from phoneagent.upload.endpoints import EndpointError, load_endpoints
from watchsim.errors import EXIT_USAGE as WATCH_EXIT_USAGE
from watchsim.model import ScenarioError, load_scenario

SEGMENT = '[[segment]]\nactivity = "rest"\nduration = "1h"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('transprt = "bluez"\n', r"config\.toml: Object contains unknown field `transprt`"),
        ("[sync]\nscan_timout = 5\n", r"config\.toml: sync: .*unknown field `scan_timout`"),
        ('[sync]\nscan_timeout = "5s"\n', r"config\.toml: sync\.scan_timeout: Expected `float`"),
        ("sync = 5\n", r"config\.toml: sync: Expected `table`, got `int`"),
        ("[sync]\nconnect_timeout = 0\n", r"sync\.connect_timeout: Expected `float` > 0\.0"),
        ('transport = " bluez"\n', r"config\.toml: transport must be a non-empty string"),
        ('agent_address = "F0:5A"\n', r"config\.toml: agent_address: not a Bluetooth address"),
    ],
)
def test_agent_config(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=expected) as refused:
        load_config(tmp_path)
    assert refused.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('prefx = "ws"\n', r"cloud\.toml: Object contains unknown field `prefx`"),
        (
            '[regions.eu]\nhost = "h"\nuser = "a"\n',
            r"cloud\.toml \[regions\.eu\]: Object contains unknown field `user`",
        ),
        ('[regions.eu]\nhost = "h"\nport = "1883"\n', r"\[regions\.eu\]: port: Expected `int`,"),
        ('[regions.eu]\nhost = "h"\ntls = "no"\n', r"\[regions\.eu\]: tls: Expected `bool`"),
        ("[regions.eu]\nport = 1883\n", r"\[regions\.eu\]: Object missing required field `host`"),
        ('[regions.eu]\nhost = "h"\nport = 70000\n', r"port: Expected `int` <= 65535"),
        ("regions = 3\n", r"cloud\.toml: regions: Expected `table`, got `int`"),
    ],
)
def test_cloud_endpoints(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "cloud.toml").write_text(text)
    with pytest.raises(EndpointError, match=expected) as refused:
        load_endpoints(tmp_path / "cloud.toml")
    assert refused.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('nme = "x"\n' + SEGMENT, r"s\.toml: top level: Object contains unknown field `nme`"),
        ("loop = 1\n" + SEGMENT, r"s\.toml: loop: Expected `bool`, got `int`"),
        (SEGMENT + 'cadence = "fast"\n', r"\(line 1\): segment\[0\]\.cadence: Expected `float`"),
        (
            SEGMENT + '[[event]]\nkind = "reboot"\n',
            r"\(line 4\): event\[0\]: Object missing required field `at`",
        ),
        ('[[segment]]\nduration = "1h"\n', r"segment\[0\]: .*required field `activity`"),
    ],
)
def test_scenario(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "s.toml").write_text(text)
    with pytest.raises(ScenarioError, match=expected) as refused:
        load_scenario(tmp_path / "s.toml")
    assert refused.value.exit_code == WATCH_EXIT_USAGE
