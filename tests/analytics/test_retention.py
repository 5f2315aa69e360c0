"""Retention with rollups, on both databases: exactly the eligible occurrences go (with their events, items,
correlations and emptied messages), and every number they leave in alert_rollups matches an independent
computation over the known dataset — also after repeated, later and concurrent runs."""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import defaultdict

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from receiver.clock import SystemClock
from receiver.cli import main as cli_main
from receiver.engine import retention
from receiver.statistics import write_rollups as rollups
from receiver.store.models import AlertRollup
from receiver.store.write_port import DirectWrites

from ..conftest import table_counts
from ..support.fixtures import TOKEN
from .dataset import NOW, UTC, Dataset

FINISHED = {"sent", "dead"}


# --- the independent computation ---------------------------------------------------------------------------


def expected_deleted(ds: Dataset, cutoff: dt.datetime) -> set[int]:
    busy = {a for m in ds.messages if m.status not in FINISHED for a in m.alert_ids}
    return {o.id for o in ds.alerts
            if o.status == "resolved" and o.starts_at < cutoff and (o.end or o.starts_at) < cutoff and o.id not in busy}


def expected_rollups(ds: Dataset, ids: set[int]) -> dict[tuple, dict]:
    status = {m.id: m.status for m in ds.messages}
    out: dict[tuple, dict] = {}
    for o in ds.alerts:
        if o.id not in ids:
            continue
        key = (o.starts_at.astimezone(UTC).date(), o.service, o.alertname, o.severity)
        r = out.setdefault(key, {"occurrences": 0, "resolved": 0, "acked": 0, "escalated": 0, "escalations": 0,
                                 "levels": defaultdict(int), "mtta": [], "mttr": [], "notifications": 0,
                                 "notifications_failed": 0})
        r["occurrences"] += 1
        r["resolved"] += o.status == "resolved"
        r["acked"] += o.first_acked_at is not None
        r["escalated"] += o.escalation_count > 0
        r["escalations"] += o.escalation_count
        r["levels"][o.level] += 1
        if o.first_notified_at and o.first_acked_at:
            r["mtta"].append(max(0.0, (o.first_acked_at - o.first_notified_at).total_seconds()))
        if o.status == "resolved" and o.end:
            r["mttr"].append(max(0.0, (o.end - o.starts_at).total_seconds()))
        r["notifications"] += len(o.messages)
        r["notifications_failed"] += sum(status[m] == "dead" for m in o.messages)
    return out


def bucket_upper(v: float) -> float:
    """The `le` bound of a value, by a plain scan of the documented bounds."""
    for b in rollups.BOUNDS:
        if v <= b:
            return b
    return math.inf


def bucket_lower(v: float) -> float:
    upper = bucket_upper(v)
    below = [b for b in rollups.BOUNDS if b < upper]
    return below[-1] if below else 0.0


def histogram(values: list[float]) -> dict[float, int]:
    out: dict[float, int] = defaultdict(int)
    for v in values:
        out[bucket_upper(v)] += 1
    return dict(out)


def stored_histogram(hist: dict) -> dict[float, int]:
    return {(math.inf if k == "+Inf" else float(k)): v for k, v in hist.items() if v}


def exact_quantile(values: list[float], q: float) -> tuple[float, float]:
    """The two values a linearly interpolated q-quantile lies between (numpy's default definition)."""
    s = sorted(values)
    pos = (len(s) - 1) * q
    return s[math.floor(pos)], s[math.ceil(pos)]


def read_rollups(db) -> dict[tuple, dict]:
    with db.connect() as conn:
        rows = conn.execute(sa.select(AlertRollup.__table__)).all()
    return {(r.day, r.service, r.alertname, r.severity): dict(r._mapping) for r in rows}


def assert_rollups_match(db, ds: Dataset, ids: set[int]) -> None:
    want = expected_rollups(ds, ids)
    got = read_rollups(db)
    assert set(got) == set(want)
    for key, w in want.items():
        g = got[key]
        for name in ("occurrences", "resolved", "acked", "escalated", "escalations", "notifications",
                     "notifications_failed"):
            assert g[name] == w[name], (key, name)
        assert g["levels"] == dict(w["levels"]), key
        for name in ("mtta", "mttr"):
            assert g[f"{name}_count"] == len(w[name]), (key, name)
            assert g[f"{name}_sum"] == pytest.approx(sum(w[name]), rel=1e-9, abs=1e-6), (key, name)
            assert stored_histogram(g[f"{name}_hist"]) == histogram(w[name]), (key, name)
    # Percentiles over every rolled-up day together, as a stats query over old periods would ask them.
    for name in ("mtta", "mttr"):
        values = [v for w in want.values() for v in w[name]]
        merged = rollups.merge(g[f"{name}_hist"] for g in got.values())
        if not values:
            assert rollups.percentile(merged, 0.5) is None
            continue
        for q in (0.5, 0.9, 0.99):
            lo, hi = exact_quantile(values, q)
            estimate = rollups.percentile(merged, q)
            assert bucket_lower(lo) <= estimate <= min(bucket_upper(hi), rollups.MAX_BOUND), (name, q)


def remaining(ds: Dataset, deleted: set[int], cutoff: dt.datetime) -> dict[str, int]:
    alive = [o for o in ds.alerts if o.id not in deleted]
    messages = [m for m in ds.messages
                if any(a not in deleted for a in m.alert_ids)
                or (not m.alert_ids and not (m.status in FINISHED and m.created_at < cutoff))]
    return {"alerts": len(alive), "alert_events": sum(o.events for o in alive),
            "notification_items": sum(1 for m in ds.messages for a in m.alert_ids if a not in deleted),
            "notifications": len(messages),
            "correlations": sum(1 for k in ds.links if k.alert_id not in deleted and k.related_alert_id not in deleted)}


def live_ids(db) -> set[int]:
    with db.connect() as conn:
        return set(conn.execute(sa.text("SELECT id FROM alerts")).scalars())


# --- purge -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [7, 5000])
def test_purge_folds_and_deletes_exactly_the_eligible(db, batch_size):
    ds = Dataset.history(seed=11, n=260).insert(db)
    cutoff = retention.cutoff_for(NOW, dt.timedelta(days=5))
    assert cutoff == dt.datetime(2026, 11, 18, tzinfo=UTC)
    want = expected_deleted(ds, cutoff)
    assert 60 < len(want) < 200  # the dataset exercises both sides
    assert retention.count(db, cutoff) == len(want)

    before = table_counts(db)
    result = retention.purge(DirectWrites(db), cutoff, batch_size=batch_size)

    assert result.complete and result.counts.alerts == len(want)
    assert result.batches == math.ceil(len(want) / batch_size)
    assert live_ids(db) == {o.id for o in ds.alerts} - want
    after = table_counts(db)
    left = remaining(ds, want, cutoff)
    for table, n in left.items():
        assert after[table] == n, table
    c = result.counts
    assert (c.events, c.notification_items, c.notifications, c.correlations) == (
        before["alert_events"] - after["alert_events"], before["notification_items"] - after["notification_items"],
        before["notifications"] - after["notifications"], before["correlations"] - after["correlations"])
    assert_rollups_match(db, ds, want)
    assert c.rollup_rows >= len(read_rollups(db))


def test_firing_and_undelivered_history_stays_whatever_its_age(db):
    ds = Dataset()
    old = NOW - dt.timedelta(days=400)
    firing = ds.alert(starts_at=old)
    pending = ds.alert(starts_at=old, ends_at=old + dt.timedelta(minutes=5))
    ds.message([pending], status="failed")  # still being retried
    straddling = ds.alert(starts_at=old, ends_at=NOW - dt.timedelta(hours=1))  # ended after the cutoff
    gone = ds.alert(starts_at=old, resolved_at=old + dt.timedelta(minutes=1))
    ds.insert(db)
    result = retention.purge(DirectWrites(db), retention.cutoff_for(NOW, dt.timedelta(days=1)))
    assert result.counts.alerts == 1
    assert live_ids(db) == {firing.id, pending.id, straddling.id}
    assert_rollups_match(db, ds, {gone.id})


def test_repeated_and_later_runs_never_count_twice(db):
    ds = Dataset.history(seed=3, n=200).insert(db)
    first = retention.cutoff_for(NOW, dt.timedelta(days=8))
    gone = expected_deleted(ds, first)
    retention.purge(DirectWrites(db), first, batch_size=9)
    again = retention.purge(DirectWrites(db), first, batch_size=9)
    assert again.counts.alerts == 0 and again.batches == 0
    assert_rollups_match(db, ds, gone)

    # An old occurrence that was still firing resolves; a later run folds it into its (existing) day row.
    old_firing = next(o for o in ds.alerts if o.status == "firing" and o.starts_at < first and not o.messages)
    old_firing.status, old_firing.ends_at = "resolved", old_firing.starts_at + dt.timedelta(hours=2)
    old_firing.resolved_at = old_firing.ends_at
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE alerts SET status = 'resolved', ends_at = :e, resolved_at = :e WHERE id = :i"),
                     {"e": old_firing.ends_at if db.dialect.name == "postgresql"
                      else old_firing.ends_at.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds"),
                      "i": old_firing.id})
    later = retention.cutoff_for(NOW, dt.timedelta(days=4))
    result = retention.purge(DirectWrites(db), later, batch_size=9)
    both = expected_deleted(ds, later)
    assert old_firing.id in both and gone <= both
    assert result.counts.alerts == len(both - gone)
    assert_rollups_match(db, ds, both)


def test_concurrent_purges_fold_each_occurrence_once(db):
    ds = Dataset.history(seed=17, n=300).insert(db)
    cutoff = retention.cutoff_for(NOW, dt.timedelta(days=3))
    want = expected_deleted(ds, cutoff)
    results, errors = [], []
    start = threading.Barrier(3)

    def run():
        try:
            start.wait()
            results.append(retention.purge(DirectWrites(db), cutoff, batch_size=5))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sum(r.counts.alerts for r in results) == len(want)
    assert live_ids(db) == {o.id for o in ds.alerts} - want
    assert table_counts(db)["notifications"] == remaining(ds, want, cutoff)["notifications"]
    assert_rollups_match(db, ds, want)


def test_budget_stops_between_batches_and_the_next_run_continues(db):
    ds = Dataset.history(seed=23, n=120).insert(db)
    cutoff = retention.cutoff_for(NOW, dt.timedelta(days=2))
    want = expected_deleted(ds, cutoff)
    stopped = retention.purge(DirectWrites(db), cutoff, batch_size=10, should_stop=iter([False, False, True]).__next__)
    assert not stopped.complete and stopped.counts.alerts == 20
    rest = retention.purge(DirectWrites(db), cutoff, batch_size=10)
    assert rest.complete and stopped.counts.alerts + rest.counts.alerts == len(want)
    assert_rollups_match(db, ds, want)


@pytest.mark.parametrize("now, older_than, cutoff", [
    (NOW, dt.timedelta(days=90), dt.datetime(2026, 8, 25, tzinfo=UTC)),
    (dt.datetime(2026, 11, 23, 0, 0, tzinfo=UTC), dt.timedelta(days=1), dt.datetime(2026, 11, 22, tzinfo=UTC)),
    (dt.datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC), dt.timedelta(days=1), dt.datetime(2026, 11, 21, tzinfo=UTC)),
    (dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))), dt.timedelta(days=1, hours=12),
     dt.datetime(2026, 3, 27, tzinfo=UTC)),
], ids=["90d", "at-midnight", "just-before-midnight", "offset-input"])
def test_cutoff_is_a_utc_midnight(now, older_than, cutoff):
    assert retention.cutoff_for(now, older_than) == cutoff


def test_cutoff_refuses_less_than_a_day():
    with pytest.raises(ValueError):
        retention.cutoff_for(NOW, dt.timedelta(hours=23))


def test_run_retention_uses_retention_days(make_config, db):
    ds = Dataset.history(seed=5, n=150).insert(db)
    config = make_config(retention={"days": 6})
    result = retention.run_retention(DirectWrites(db), config, NOW)
    cutoff = dt.datetime(2026, 11, 17, tzinfo=UTC)
    assert result.cutoff == cutoff and result.complete
    assert result.counts.alerts == len(expected_deleted(ds, cutoff)) > 0
    assert_rollups_match(db, ds, expected_deleted(ds, cutoff))


# --- DELETE /api/v1/history --------------------------------------------------------------------------------


def test_delete_history_rolls_up_and_reports_counts(client, db):
    ds = Dataset.history(seed=29, n=150).insert(db)
    cutoff = dt.datetime(2026, 11, 19, tzinfo=UTC)
    want = expected_deleted(ds, cutoff)
    dry = client.delete("/api/v1/history?older_than=4d&dry_run=true")
    assert dry.status_code == 200 and dry.get_json() == {"older_than": "4d", "cutoff": "2026-11-19T00:00:00Z",
                                                         "dry_run": True, "eligible": len(want)}
    assert len(live_ids(db)) == len(ds.alerts)
    r = client.delete("/api/v1/history", query_string={"older_than": "4d"})
    body = r.get_json()
    assert r.status_code == 200, body
    assert body["cutoff"] == "2026-11-19T00:00:00Z" and body["complete"] is True
    assert body["deleted"]["alerts"] == len(want)
    assert body["deleted"]["correlations"] == sum(1 for k in ds.links if k.alert_id in want or k.related_alert_id in want)
    assert_rollups_match(db, ds, want)


def test_delete_history_answers_incomplete_after_its_budget(client, db, monkeypatch):
    from receiver.web import history_api

    Dataset.history(seed=29, n=60).insert(db)
    monkeypatch.setattr(history_api, "BUDGET", 0.0)
    r = client.delete("/api/v1/history?older_than=1d")
    assert r.status_code == 200 and r.get_json()["complete"] is False and "again" in r.get_json()["detail"]
    monkeypatch.setattr(history_api, "BUDGET", 20.0)
    assert client.delete("/api/v1/history?older_than=1d").get_json()["complete"] is True


@pytest.mark.parametrize("query", ["", "older_than=", "older_than=12h", "older_than=23h59m", "older_than=90",
                                   "older_than=ninety", "older_than=90d&colour=red", "older_than=90d&dry_run=maybe"])
def test_delete_history_bad_input_is_400(client, query):
    r = client.delete(f"/api/v1/history?{query}")
    assert r.status_code == 400, r.get_json()


@pytest.fixture
def auth_client(auth_config, clock):
    from prometheus_client import CollectorRegistry

    from receiver.app import create_app

    app = create_app(auth_config, clock=clock, registry=CollectorRegistry())
    yield app.test_client()
    app.extensions["alert_receiver"].db.dispose()


@pytest.mark.parametrize("token, status", [(None, 401), ("read-token-0123", 403), (TOKEN, 403),
                                           ("admin-token-4567", 200)])
def test_delete_history_needs_the_admin_role(auth_client, token, status):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    assert auth_client.delete("/api/v1/history?older_than=90d", headers=headers).status_code == status


# --- alert-receiver purge ----------------------------------------------------------------------------------


def test_purge_command(make_config, db):
    now = SystemClock().now()
    ds = Dataset.history(seed=31, n=120, end=now).insert(db)
    config = make_config()
    cutoff = retention.cutoff_for(now, dt.timedelta(days=3))
    want = expected_deleted(ds, cutoff)
    runner = CliRunner()
    declined = runner.invoke(cli_main, ["purge", "-c", str(config.source), "--older-than", "3d"], input="n\n")
    assert declined.exit_code == 1 and f"{len(want)} resolved occurrence(s)" in declined.output
    assert len(live_ids(db)) == len(ds.alerts)
    bad = runner.invoke(cli_main, ["purge", "-c", str(config.source), "--older-than", "5h", "--yes"])
    assert bad.exit_code == 2 and "at least 1d" in bad.output
    done = runner.invoke(cli_main, ["purge", "-c", str(config.source), "--older-than", "3d", "--yes"])
    if retention.cutoff_for(SystemClock().now(), dt.timedelta(days=3)) != cutoff:
        pytest.skip("crossed a UTC midnight during the test")
    assert done.exit_code == 0, done.output
    assert f"deleted {len(want)} alerts" in done.output
    assert live_ids(db) == {o.id for o in ds.alerts} - want
    assert_rollups_match(db, ds, want)


# --- the histogram ------------------------------------------------------------------------------------------


def _values(kind: str) -> list[float]:
    import random

    rnd = random.Random(kind)
    if kind == "lognormal":
        return [math.exp(rnd.gauss(6, 2)) for _ in range(2001)]
    if kind == "uniform":
        return [rnd.uniform(0, 7200) for _ in range(500)]
    if kind == "constant":
        return [300.0] * 40
    if kind == "one":
        return [42.0]
    if kind == "zeros-and-huge":
        return [0.0] * 10 + [90 * 86400.0] * 3 + [1.0, 1.5]
    if kind == "on-bounds":
        return list(rollups.BOUNDS) * 2
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["lognormal", "uniform", "constant", "one", "zeros-and-huge", "on-bounds"])
@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.9, 0.99, 1.0])
def test_percentile_is_within_the_buckets_of_the_exact_value(kind, q):
    values = _values(kind)
    hist: dict[str, int] = {}
    for v in values:
        rollups.observe(hist, v)
    assert stored_histogram(hist) == histogram(values)
    lo, hi = exact_quantile(values, q)
    estimate = rollups.percentile(hist, q)
    assert bucket_lower(lo) <= estimate <= min(bucket_upper(hi), rollups.MAX_BOUND)


def test_merge_sums_buckets_and_percentile_of_nothing_is_none():
    a, b = {"1": 2, "3870": 1}, {"3870": 3, "+Inf": 1}
    assert rollups.merge([a, b, {}]) == {"1": 2, "3870": 4, "+Inf": 1}
    assert rollups.percentile({}, 0.5) is None
    assert rollups.percentile({"+Inf": 2}, 0.5) == rollups.MAX_BOUND
    with pytest.raises(ValueError):
        rollups.merge([{"3.14159": 1}])
    with pytest.raises(ValueError):
        rollups.percentile(a, 1.5)


def test_bucket_scheme_is_fixed():
    """Stored histograms name buckets by these bounds: changing them silently breaks every old rollup."""
    assert len(rollups.BOUNDS) == 60 and rollups.BOUNDS[0] == 1.0 and rollups.BOUNDS[-1] == 30 * 86400
    assert rollups.KEYS[:6] == ("1", "1.28", "1.65", "2.12", "2.72", "3.5") and rollups.KEYS[-1] == "+Inf"
    ratios = [b / a for a, b in zip(rollups.BOUNDS, rollups.BOUNDS[1:])]
    assert 1.26 < min(ratios) and max(ratios) < 1.30
