"""The aiomqtt internals ``phoneagent/upload/client.py`` relies on, and their exact pin.

The refused-publish check wraps aiomqtt's private paho client and overrides its private
``_on_publish``; these fail fast when an aiomqtt or paho-mqtt upgrade moves either, or when
the pin in pyproject drifts from the versions installed (and tested). aiomqtt builds its
client inside a running loop, hence the async tests.
"""

from __future__ import annotations

import asyncio
import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path

import aiomqtt
from paho.mqtt.client import Client as PahoClient

from phoneagent.upload.client import CheckedClient

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_pin_is_exactly_the_installed_versions() -> None:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    for name in ("aiomqtt", "paho-mqtt"):
        assert f"{name}=={version(name)}" in deps


async def test_aiomqtt_keeps_a_paho_client_whose_publish_it_calls() -> None:
    client = aiomqtt.Client("localhost")
    assert isinstance(client._client, PahoClient)
    assert "self._client.publish(" in inspect.getsource(aiomqtt.Client.publish)


async def test_aiomqtt_on_publish_is_paho_callback_with_reason_code() -> None:
    client = CheckedClient("localhost")
    assert client._client.on_publish == client._on_publish
    params = list(inspect.signature(aiomqtt.Client._on_publish).parameters)
    assert params == ["self", "client", "userdata", "mid", "reason_code", "properties"]


async def test_checked_client_wraps_the_paho_publish() -> None:
    client = CheckedClient("localhost")
    assert client._client.publish.__qualname__.startswith("CheckedClient.")


async def test_checked_client_writes_in_place_of_aiomqtt_register_write() -> None:
    client = CheckedClient("localhost")
    assert client._client.on_socket_register_write == client._register_write
    params = list(inspect.signature(aiomqtt.Client._on_socket_register_write).parameters)
    assert params == ["self", "client", "userdata", "sock"]
    assert isinstance(client._disconnected, asyncio.Future)
