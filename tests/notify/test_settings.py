"""Notification settings are refused at start-up when delivery could not work, naming why."""

from __future__ import annotations

import pytest

from sidecar.notify.delivery import DeliveryConfigError, address_of, delivery_for
from sidecar.settings import SettingsError, load_settings
from tests.conftest import CONFIG


def _load(tmp_path, **notifications):
    return load_settings(
        CONFIG, instance_dir=tmp_path, environ={}, overrides={"notifications": notifications}
    )


def test_notify_needs_a_template_for_every_kind(tmp_path) -> None:
    with pytest.raises(SettingsError, match=r"needs notify.templates.details_opened"):
        _load(tmp_path, delivery="notify")
    with pytest.raises(SettingsError, match=r"unknown notification kind 'letters'"):
        _load(tmp_path, notify={"templates": {"letters": "x"}})


def test_smtp_needs_a_from_address_and_addresses_must_be_email(tmp_path) -> None:
    with pytest.raises(SettingsError, match=r"delivery 'smtp' needs smtp.from_address"):
        _load(tmp_path, delivery="smtp")
    with pytest.raises(SettingsError, match=r"address of 'u.sm' is not an email address"):
        _load(tmp_path, addresses={"u.sm": "sam at council"})
    with pytest.raises(SettingsError, match=r"details_digest"):
        _load(tmp_path, details_digest="weekly")


def test_the_worker_refuses_to_start_without_the_notify_key_or_smtp_password(tmp_path) -> None:
    templates = {kind: "t" for kind in ("details_opened", "privacy_alert", "awaiting_vote")}
    templates |= {kind: "t" for kind in ("review_due", "appeal_window", "appeal_assigned")}
    templates["appeal_to_decide"] = "t"
    settings = _load(tmp_path, delivery="notify", notify={"templates": templates})
    with pytest.raises(DeliveryConfigError, match="FOREWARN_NOTIFY_API_KEY"):
        delivery_for(settings.notifications, {})
    smtp = _load(
        tmp_path,
        delivery="smtp",
        smtp={"from_address": "fw@council.example", "username": "forewarn"},
    )
    with pytest.raises(DeliveryConfigError, match="FOREWARN_SMTP_PASSWORD"):
        delivery_for(smtp.notifications, {})


def test_addresses_come_from_the_table_the_id_or_the_domain(tmp_path) -> None:
    settings = _load(tmp_path, addresses={"u.sm": "sam@council.example"}).notifications
    assert address_of(settings, "u.sm") == "sam@council.example"
    assert address_of(settings, "jo@council.example") == "jo@council.example"
    assert address_of(settings, "u.hs") is None
    domain = _load(tmp_path, address_domain="council.example").notifications
    assert address_of(domain, "u.hs") == "u.hs@council.example"
