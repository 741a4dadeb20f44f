"""Cloud upload over MQTT: uploader, wire format, per-region endpoints (the receiver:
``cloudreceiver``)."""

from __future__ import annotations

from phoneagent.upload.client import (
    CheckedClient,
    MqttRefusedError,
    PublishRefusedError,
    SubscribeRefusedError,
)
from phoneagent.upload.endpoints import (
    Endpoint,
    EndpointError,
    Endpoints,
    PlaintextRefusedError,
    endpoints_path,
    load_endpoints,
)
from phoneagent.upload.uploader import Uploader, UploadStats, policy_refusal

__all__ = [
    "CheckedClient",
    "Endpoint",
    "EndpointError",
    "Endpoints",
    "MqttRefusedError",
    "PlaintextRefusedError",
    "PublishRefusedError",
    "SubscribeRefusedError",
    "UploadStats",
    "Uploader",
    "endpoints_path",
    "load_endpoints",
    "policy_refusal",
]
