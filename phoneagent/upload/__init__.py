"""Cloud upload over MQTT: uploader, wire format, per-region endpoints, reference receiver."""

from __future__ import annotations

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
    "Endpoint",
    "EndpointError",
    "Endpoints",
    "PlaintextRefusedError",
    "UploadStats",
    "Uploader",
    "endpoints_path",
    "load_endpoints",
    "policy_refusal",
]
