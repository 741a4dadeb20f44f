"""The privacy lifecycle: account or guest, consent, export, deletion, audit.

Entry points for other parts of the agent:

- ``upload_allowed(store, region=None) -> Decision``: may the data leave now. The uploader
  reads the same state with each chunk of samples and asks ``decide_upload`` before
  every batch of it.
- ``collection_allowed(store) -> set[Metric]`` and ``sync_preferences(store)``: what the
  sync engine may collect and the profile it writes to the watch.
- ``current_user_profile(store) -> UserProfile | None``: the watch's body profile.
- ``request_cloud_erasure(store, scope)``: erase requests the uploader sends and tracks.
"""

from __future__ import annotations

from phoneagent.privacy.account import (
    AccountDeletion,
    ProfileInput,
    create_account,
    delete_account,
    guest_identity,
    update_account,
)
from phoneagent.privacy.consent import (
    POLICY_VERSION,
    collection_allowed,
    is_granted,
    policy_notice,
    set_consent,
    sync_preferences,
)
from phoneagent.privacy.erase import Deletion, delete_data, request_cloud_erasure
from phoneagent.privacy.errors import AccountError, PrivacyError, UnderAgeError
from phoneagent.privacy.gate import (
    CLOUD_UPLOAD_PURPOSE,
    LOG_UPLOAD_PURPOSE,
    Decision,
    decide_upload,
    upload_allowed,
    upload_subjects,
)
from phoneagent.privacy.profile import current_user_profile

__all__ = [
    "CLOUD_UPLOAD_PURPOSE",
    "LOG_UPLOAD_PURPOSE",
    "POLICY_VERSION",
    "AccountDeletion",
    "AccountError",
    "Decision",
    "Deletion",
    "PrivacyError",
    "ProfileInput",
    "UnderAgeError",
    "collection_allowed",
    "create_account",
    "current_user_profile",
    "decide_upload",
    "delete_account",
    "delete_data",
    "guest_identity",
    "is_granted",
    "policy_notice",
    "request_cloud_erasure",
    "set_consent",
    "sync_preferences",
    "update_account",
    "upload_allowed",
    "upload_subjects",
]
