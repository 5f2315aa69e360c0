"""Issue #15, finding 11: signing out ended nothing on the server; the signed 12-hour cookie, kept by whoever copied
it, still read and acted. Now signing out revokes the session's id in the database (every worker and replica
refuses it), and retention deletes a revocation once the cookie would have expired anyway."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.engine.retention import run_retention
from receiver.web import dashboard_session

from ..dashboard.support import TOKENS, csrf_of, sign_in, token_settings


@pytest.fixture
def make_app(make_config, clock):
    apps = []

    def make():
        app = create_app(make_config(auth={"tokens": token_settings()}), clock=clock, registry=CollectorRegistry())
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["alert_receiver"].db.dispose()


def signed_in(app, token=TOKENS["write"]):
    client = app.test_client()
    assert sign_in(client, token).status_code == 303
    assert client.get("/").status_code == 200
    cookie = client.get_cookie(dashboard_session.COOKIE)
    return client, (cookie.key, cookie.value)


def sign_out(client) -> None:
    csrf = csrf_of(client.get("/login").get_data(as_text=True))
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303


def revocations(app) -> int:
    with app.extensions["alert_receiver"].db.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM session_revocations")).scalar_one()


def test_a_cookie_copied_before_sign_out_is_refused_after_it(make_app):
    app = make_app()
    client, cookie = signed_in(app)
    csrf = csrf_of(client.get("/").get_data(as_text=True))
    sign_out(client)
    thief = app.test_client()
    thief.set_cookie(*cookie)
    assert thief.get("/").status_code == 303  # to the sign-in page
    assert thief.get("/now/alerts").status_code == 401
    assert thief.post("/delivery/1/retry", data={"csrf": csrf}).status_code in (401, 403)


def test_every_worker_refuses_it(make_app):
    """Another process on the same database (a gunicorn worker, a replica) knows of the sign-out too."""
    first, other = make_app(), make_app()
    client, cookie = signed_in(first)
    sign_out(client)
    thief = other.test_client()
    thief.set_cookie(*cookie)
    assert thief.get("/").status_code == 303


def test_signing_out_ends_that_session_only(make_app):
    app = make_app()
    laptop, _ = signed_in(app)
    phone, _ = signed_in(app)
    sign_out(laptop)
    assert phone.get("/").status_code == 200 and laptop.get("/").status_code == 303


def test_a_revocation_is_deleted_once_the_cookie_has_expired(make_app, clock):
    app = make_app()
    client, _ = signed_in(app)
    sign_out(client)
    sign_out(client)  # signed out already: nothing more to revoke
    assert revocations(app) == 1
    svc = app.extensions["alert_receiver"]
    run_retention(svc.writes, svc.config, clock.now() + dt.timedelta(hours=1))
    assert revocations(app) == 1
    run_retention(svc.writes, svc.config, clock.now() + dashboard_session.LIFETIME + dt.timedelta(minutes=1))
    assert revocations(app) == 0
