"""The privacy lifecycle on real SQLCipher stores: account, consent, gate, deletion, audit."""

from __future__ import annotations

from datetime import date

import pytest

from phoneagent.privacy import (
    AccountDeletion,
    AccountError,
    ProfileInput,
    UnderAgeError,
    collection_allowed,
    create_account,
    current_user_profile,
    delete_account,
    delete_data,
    set_consent,
    sync_preferences,
    update_account,
    upload_allowed,
)
from phoneagent.privacy.audit import FAIL, PASS, audit
from phoneagent.privacy.consent import POLICY_VERSION, policy_notice
from phoneagent.privacy.gate import CLOUD_CATEGORIES, CLOUD_UPLOAD_PURPOSE, cloud_recipient
from phoneagent.store import Store
from phoneagent.store.ledger import ERASE_DEADLINE_S
from protocol.metrics import Metric, Sample
from protocol.settings import Sex, UserProfile
from tests.integration.conftest import NOW, Clock

TODAY = date(2027, 1, 15)  # NOW's date
WATCH = "F0:F1:F2:F3:F4:F5"
OTHER = "C0:C1:C2:C3:C4:C5"
ADULT = ProfileInput("eu", date(1990, 3, 1), Sex.FEMALE, 168, 612)
# POLICY.md's table, in order.
POLICY_IDS = [
    "PR-ENC",
    "PR-LINK",
    "PR-OPTOUT",
    "PR-PROFILE",
    "PR-CALL",
    "PR-NOTIF",
    "PR-MUSIC",
    "PR-APPLIST",
    "PR-DEVICE",
    "PR-LOGS",
    "PR-GUEST",
    "PR-CLOUD",
    "PR-ANON",
    "PR-SHARE",
    "PR-TLS",
    "PR-REGION",
    "PR-RETAIN",
    "PR-ACCESS",
    "PR-CORRECT",
    "PR-WITHDRAW",
    "PR-DELETE",
    "PR-MINOR",
    "PR-DISCLOSE",
    "PR-VERSION",
]


def fill(store: Store) -> None:
    """Two watches, each with 40 samples cycling through the metrics (ts = NOW + seq)."""
    for address in (WATCH, OTHER):
        store.add_device(address, name="Wrist", serial="SN-1")
        store.put_bond(address, b"ltk")
        metrics = list(Metric)
        store.store_batch(
            address,
            [Sample(s, NOW + s, metrics[s % len(metrics)], 60 + s) for s in range(40)],
        )


def account(store: Store, profile: ProfileInput = ADULT) -> None:
    create_account(store, profile, TODAY)


def test_under_16_refused_and_nothing_created__PR_MINOR(store: Store) -> None:
    minor = ProfileInput("eu", date(2011, 6, 1), Sex.MALE, 150, 400)
    with pytest.raises(UnderAgeError, match="minimum age of 16"):
        create_account(store, minor, TODAY)
    assert store.ledger.get_account() is None
    assert store.ledger.consent_history() == []


def test_13_is_enough_where_the_region_allows_it__PR_MINOR(store: Store) -> None:
    fourteen = ProfileInput("uk", date(2012, 6, 1), Sex.MALE, 150, 400)
    account(store, fourteen)
    assert store.ledger.get_account() is not None
    with pytest.raises(AccountError, match="exists already"):
        account(store)


def test_12_is_refused_even_where_13_is_enough__PR_MINOR(store: Store) -> None:
    twelve = ProfileInput("us", date(2014, 6, 1), Sex.MALE, 140, 350)
    with pytest.raises(UnderAgeError, match="minimum age of 13"):
        create_account(store, twelve, TODAY)
    assert store.ledger.get_account() is None


def test_correction_revealing_a_minor_deletes_the_account_data__PR_MINOR(store: Store) -> None:
    account(store)
    fill(store)
    set_consent(store, "cloud_sync", True)
    corrected = ProfileInput("eu", date(2012, 1, 1), Sex.FEMALE, 150, 400)
    result = update_account(store, corrected, TODAY)
    assert isinstance(result, AccountDeletion)
    assert result.samples == 80
    assert store.ledger.get_account() is None
    assert store.list_devices() == [] and store.list_bonds() == []
    assert [r.scope for r in store.ledger.erase_requests()] == ["account"]


def test_profile_correction_reaches_the_watch_profile__PR_CORRECT(store: Store) -> None:
    account(store)
    update_account(store, ProfileInput("eu", date(1990, 3, 1), Sex.FEMALE, 171, 655), TODAY)
    expected = UserProfile(36, Sex.FEMALE, 171, 655)
    assert current_user_profile(store, TODAY) == expected
    # The sync engine loads its preferences from the store: it sees the correction.
    assert sync_preferences(store).profile == expected


def test_no_password_and_only_algorithm_fields_for_the_watch__PR_PROFILE(store: Store) -> None:
    account(store)
    columns = " ".join(c for cols in store.ledger.table_columns().values() for c in cols)
    assert "password" not in columns and "email" not in columns
    profile = current_user_profile(store, TODAY)
    assert profile is not None
    assert set(profile.__slots__) == {"age_years", "sex", "height_cm", "weight_decikg"}


def test_guest_can_never_upload__PR_GUEST(store: Store) -> None:
    guest = store.ledger.ensure_guest()
    assert guest.guest and len(guest.pseudonym) == 32
    with pytest.raises(AccountError, match="guest mode never"):
        set_consent(store, "cloud_sync", True)
    # Even a ledger that says "granted" (written past the rules) does not open the gate.
    store.ledger.append_consent("cloud_sync", "", True, POLICY_VERSION)
    decision = upload_allowed(store)
    assert not decision and "guest" in decision.reason


def test_guest_install_id_is_not_the_account_pseudonym__PR_GUEST(store: Store) -> None:
    install_id = store.ledger.ensure_guest().pseudonym
    account(store)
    created = store.ledger.get_account()
    assert created is not None and not created.guest
    assert created.pseudonym != install_id


def test_cloud_off_until_granted_and_withdrawal_is_immediate__PR_CLOUD__PR_WITHDRAW(
    store: Store, clock: Clock
) -> None:
    account(store)
    assert not upload_allowed(store)
    set_consent(store, "cloud_sync", True)
    assert upload_allowed(store)
    clock.now += 5
    withdrawal = set_consent(store, "cloud_sync", False)
    assert not upload_allowed(store)
    assert (withdrawal.at, withdrawal.granted, withdrawal.policy_version) == (
        NOW + 5,
        False,
        POLICY_VERSION,
    )


def test_other_region_needs_cross_border_consent__PR_REGION(store: Store) -> None:
    account(store)
    set_consent(store, "cloud_sync", True)
    assert upload_allowed(store, "eu")
    refused = upload_allowed(store, "us")
    assert not refused and "cross_border:us" in refused.reason
    set_consent(store, "cross_border:us", True)
    assert upload_allowed(store, "us")


def test_opted_out_metric_leaves_collection_and_the_sync_copy__PR_OPTOUT(store: Store) -> None:
    assert collection_allowed(store) == set(Metric)  # default: collected, locally
    set_consent(store, "metric:heart_rate", False)
    assert collection_allowed(store) == set(Metric) - {Metric.HEART_RATE}
    assert sync_preferences(store).opted_out == {Metric.HEART_RATE}
    set_consent(store, "metric:heart_rate", True)
    assert sync_preferences(store).opted_out == frozenset()


def test_consents_record_policy_version_and_new_version_is_noticed__PR_VERSION(
    store: Store,
) -> None:
    assert policy_notice(store) is not None  # never accepted
    store.ledger.append_consent("policy", "", True, "2020-01-01")
    notice = policy_notice(store)
    assert notice is not None and "2020-01-01" in notice and POLICY_VERSION in notice
    account(store)  # creating the account accepts the current version
    assert policy_notice(store) is None
    assert all(e.policy_version for e in store.ledger.consent_history())


def test_delete_by_device_metric_and_time_range__PR_DELETE(store: Store) -> None:
    fill(store)
    assert delete_data(store, metric=Metric.STEPS).samples == 20
    assert delete_data(store, device=OTHER, since=NOW, until=NOW + 10).samples == 7
    gone = delete_data(store, device=WATCH)
    assert (gone.samples, gone.devices) == (30, 1)
    assert store.get_device(WATCH) is None and WATCH not in store.list_bonds()
    assert gone.erase_requests == ()  # never in the cloud: nothing to erase there
    everything = delete_data(store)
    assert (everything.samples, everything.devices) == (23, 1)
    assert store.counts() == {}


def test_delete_requests_cloud_erasure_when_cloud_was_on__PR_DELETE(store: Store) -> None:
    account(store)
    fill(store)
    set_consent(store, "cloud_sync", True)
    set_consent(store, "cloud_sync", False)  # off now, but data was uploaded before
    result = delete_data(store, device=WATCH, metric=Metric.SPO2)
    (request,) = result.erase_requests
    device = store.get_device(WATCH)
    assert device is not None
    assert (request.scope, request.device_pseudonym, request.metric) == (
        "data",
        device.pseudonym,
        "spo2",
    )


def test_account_deletion_wipes_now_and_tracks_cloud_erasure__PR_RETAIN(
    store: Store, clock: Clock
) -> None:
    account(store)
    fill(store)
    set_consent(store, "cloud_sync", True)
    set_consent(store, "cross_border:us", True)
    store.ledger.record_upload("eu", {WATCH: 39}, None)
    deletion = delete_account(store)
    assert deletion.samples == 80
    assert store.list_devices() == [] and store.list_bonds() == [] and store.counts() == {}
    assert store.ledger.get_account() is None
    # Only the consents that let data leave the phone keep their history, each closed.
    kept = [(e.subject, e.granted, e.at) for e in store.ledger.consent_history()]
    assert kept == [
        ("cloud_sync", True, NOW),
        ("cross_border:us", True, NOW),
        ("cloud_sync", False, NOW),
        ("cross_border:us", False, NOW),
    ]
    assert not upload_allowed(store)
    requests = store.ledger.erase_requests(pending_only=True)
    assert sorted(r.endpoint for r in requests) == ["eu", "us"]
    assert all(r.deadline_at == NOW + ERASE_DEADLINE_S for r in requests)
    clock.now += ERASE_DEADLINE_S + 1
    retain = {c.id: c for c in audit(store, store.path.parent, clock.now)}["PR-RETAIN"]
    assert retain.status == FAIL
    for r in requests:
        store.ledger.mark_erase_confirmed(r.id)
    assert store.ledger.erase_requests(pending_only=True) == []


def test_audit_covers_every_policy_id_and_passes_on_a_clean_store__PR_ENC(store: Store) -> None:
    account(store)
    fill(store)
    set_consent(store, "cloud_sync", True)
    store.ledger.record_disclosure("eu", CLOUD_UPLOAD_PURPOSE, ["samples"], 80, user_request=False)
    checks = audit(store, store.path.parent, NOW + 60)
    assert [c.id for c in checks] == POLICY_IDS
    assert [c for c in checks if c.status == FAIL] == []
    assert {c.id: c.status for c in checks}["PR-LINK"] == PASS


def test_audit_fails_a_loose_plaintext_copy_and_an_unrequested_share__PR_ENC__PR_SHARE(
    store: Store,
) -> None:
    (store.path.parent / "samples.csv").write_text("seq,value\n")
    store.ledger.record_disclosure("adtech", "analytics", ["samples"], 10, user_request=False)
    failed = {c.id for c in audit(store, store.path.parent, NOW) if c.status == FAIL}
    assert failed == {"PR-ENC", "PR-SHARE"}


def test_audit_fails_a_key_file_beside_the_database__PR_ENC(store: Store) -> None:
    (store.path.parent / "demo.key").write_text("0f" * 32)
    (enc,) = [c for c in audit(store, store.path.parent, NOW) if c.status == FAIL]
    assert enc.id == "PR-ENC" and "demo.key" in enc.evidence


@pytest.mark.parametrize(
    ("region", "verdict"),
    [
        ('host = "broker.example.com"\ntls = false', FAIL),
        ('host = "broker.example.com"\ntls = false\nallow_plaintext = true', PASS),
        ('host = "127.0.0.1"\ntls = false', PASS),
        ('host = "broker.example.com"', PASS),
        ("host = 5", FAIL),
    ],
)
def test_audit_reads_the_broker_settings__PR_TLS(store: Store, region: str, verdict: str) -> None:
    (store.path.parent / "cloud.toml").write_text(f"[regions.eu]\n{region}\n")
    checks = {c.id: c for c in audit(store, store.path.parent, NOW)}
    assert checks["PR-TLS"].status == verdict, checks["PR-TLS"].evidence


def test_audit_fails_an_upload_while_cloud_sync_was_off__PR_CLOUD__PR_DEVICE(
    store: Store,
) -> None:
    account(store)
    store.ledger.record_disclosure(
        cloud_recipient("eu"), CLOUD_UPLOAD_PURPOSE, CLOUD_CATEGORIES, 5, user_request=False
    )
    failed = {c.id for c in audit(store, store.path.parent, NOW) if c.status == FAIL}
    assert failed == {"PR-CLOUD", "PR-DEVICE"}


def test_uploads_before_an_account_deletion_are_judged_by_the_consent_then__PR_CLOUD__PR_DEVICE(
    store: Store, clock: Clock
) -> None:
    """Issue 16 item 6: the deletion wiped the consent ledger and kept the disclosures, so
    every legitimate upload before it looked like one made with cloud sync off."""
    account(store)
    fill(store)
    set_consent(store, "cloud_sync", True)
    set_consent(store, "cross_border:us", True)
    clock.now += 60
    for region in ("eu", "us"):
        store.ledger.record_disclosure(
            cloud_recipient(region),
            CLOUD_UPLOAD_PURPOSE,
            CLOUD_CATEGORIES,
            80,
            user_request=False,
        )
    clock.now += 60
    delete_account(store)
    clock.now += 60
    checks = {c.id: c for c in audit(store, store.path.parent, clock.now)}
    assert [c for c in checks.values() if c.status == FAIL] == []
    assert checks["PR-CLOUD"].evidence.startswith("cloud sync off")
    # An upload after the deletion is still one made without consent.
    store.ledger.record_disclosure(
        cloud_recipient("eu"),
        CLOUD_UPLOAD_PURPOSE,
        CLOUD_CATEGORIES,
        1,
        user_request=False,
    )
    failed = {c.id for c in audit(store, store.path.parent, clock.now) if c.status == FAIL}
    assert failed == {"PR-CLOUD", "PR-DEVICE"}
    # A new account starts with cloud sync off.
    account(store)
    assert not upload_allowed(store)


def test_audit_fails_an_upload_to_another_region_without_consent__PR_REGION(
    store: Store,
) -> None:
    account(store)
    set_consent(store, "cloud_sync", True)
    store.ledger.record_disclosure(
        cloud_recipient("us"), CLOUD_UPLOAD_PURPOSE, CLOUD_CATEGORIES, 5, user_request=False
    )
    failed = {c.id for c in audit(store, store.path.parent) if c.status == FAIL}
    assert failed == {"PR-REGION"}
