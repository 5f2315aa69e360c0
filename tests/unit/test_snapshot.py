"""The occurrence rules of docs/design.md as a case table: what one snapshot alert changes."""

from __future__ import annotations

import datetime as dt

import pytest

from receiver.domain import AlertStatus, OpenOccurrence, StoredState
from receiver.engine.snapshot import Outcome, decide, dedupe
from receiver.payload import Alert


def t(minute: int) -> dt.datetime:
    return dt.datetime(2026, 11, 23, 8, minute, tzinfo=dt.timezone.utc)


def alert(status="firing", start=10, end=None, annotations=None, fp="00000000000000aa") -> Alert:
    return Alert(fp, AlertStatus(status), {"alertname": "X"}, annotations or {"summary": "s"}, t(start),
                 t(end) if end is not None else None, "")


def open_at(start: int, annotations=None) -> OpenOccurrence:
    return OpenOccurrence(1, t(start), annotations or {"summary": "s"}, "")


CASES = [
    ("new firing", alert(), StoredState(), Outcome.NEW),
    ("repeat of the open one", alert(), StoredState(open_at(10)), Outcome.DUPLICATE),
    ("later startsAt from a peer keeps the earliest", alert(start=12), StoredState(open_at(10)), Outcome.DUPLICATE),
    ("earlier startsAt moves it back", alert(start=8), StoredState(open_at(10)), Outcome.UPDATED),
    ("new annotations update", alert(annotations={"summary": "v2"}), StoredState(open_at(10)), Outcome.UPDATED),
    ("late firing of a closed period", alert(start=10), StoredState(None, t(20)), Outcome.STALE),
    ("firing that starts exactly at the last end", alert(start=20), StoredState(None, t(20)), Outcome.STALE),
    ("new period after the last end", alert(start=21), StoredState(None, t(20)), Outcome.NEW),
    ("resolve the open one", alert("resolved", 10, 30), StoredState(open_at(10)), Outcome.RESOLVED),
    ("end of an older period while a new one is open", alert("resolved", 1, 5), StoredState(open_at(10)),
     Outcome.STALE),
    ("resolved again (HA peer)", alert("resolved", 10, 20), StoredState(None, t(20)), Outcome.DUPLICATE),
    ("first seen already resolved", alert("resolved", 10, 20), StoredState(), Outcome.NEW_RESOLVED),
    ("resolved by hand, Alertmanager still reports firing", alert(start=10), StoredState(None, t(15)), Outcome.STALE),
]


@pytest.mark.parametrize("snapshot, state, outcome", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decide(snapshot, state, outcome):
    assert decide(snapshot, state).outcome is outcome


def test_resolved_keeps_alertmanagers_end():
    d = decide(alert("resolved", 10, 30), StoredState(open_at(10)))
    assert d.ends_at == t(30) and d.occurrence_id == 1


def test_dedupe_prefers_firing_and_earliest_start_and_sorts():
    a = alert(start=12, fp="b")
    b = alert(start=9, fp="b")
    c = alert("resolved", 5, 6, fp="b")
    d = alert(fp="a")
    out = dedupe([a, c, d, b])
    assert [x.fingerprint for x in out] == ["a", "b"]
    assert out[1].starts_at == t(9) and out[1].status is AlertStatus.FIRING
