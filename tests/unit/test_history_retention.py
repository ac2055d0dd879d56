"""Availability history expires: each item carries the TTL attribute the template's HistoryTable reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chargenet.adapters.history_dynamodb import RETENTION_DAYS_VARIABLE, episode_item, expires_at
from tests.unit.test_uptime_report import episode

WRITTEN = datetime(2026, 11, 26, 7, 56, tzinfo=UTC)


def test_an_item_expires_the_retention_period_after_it_was_written(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(RETENTION_DAYS_VARIABLE, "400")
    assert expires_at(WRITTEN) == int((WRITTEN + timedelta(days=400)).timestamp())


def test_without_a_retention_the_item_is_kept(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(RETENTION_DAYS_VARIABLE, raising=False)
    assert expires_at(WRITTEN) is None


def test_an_archived_episode_expires_from_its_save_not_from_when_the_fault_began(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv(RETENTION_DAYS_VARIABLE, "30")
    before = datetime.now(UTC)
    item = episode_item(episode(1))  # the fault began on 2026-10-01
    after = datetime.now(UTC)
    assert item.expires_at is not None
    assert int((before + timedelta(days=30)).timestamp()) <= item.expires_at
    assert item.expires_at <= int((after + timedelta(days=30)).timestamp())
