"""The log channel, and the registry that builds every configured channel."""

from __future__ import annotations

import logging

import pytest
import requests

from receiver.channels.registry import CHANNEL_CLASSES, SETTINGS_BY_TYPE, build_channels
from receiver.config import load_config
from receiver.render import Renderer

from ..support.messages import make_message

CONFIGS = __import__("pathlib").Path(__file__).resolve().parents[1] / "testdata" / "configs" / "good"


@pytest.mark.parametrize("level,levelno", [("debug", logging.DEBUG), ("info", logging.INFO),
                                           ("warning", logging.WARNING), ("error", logging.ERROR)])
def test_writes_one_record_at_its_level(make_channel, caplog, level, levelno):
    caplog.set_level(logging.DEBUG, logger="receiver.channels.log")
    make_channel("log", name="audit", level=level).send(make_message(2, kind="escalated"))
    [record] = caplog.records
    assert record.name == "receiver.channels.log" and record.levelno == levelno
    assert record.getMessage().splitlines()[0] == "[L1 ESCALATED] HighCPUUsage (2 alerts)"
    assert (record.channel, record.kind, record.alert_level, record.alerts, record.notification_id) == (
        "audit", "escalated", "L1", 2, 7)


def test_every_type_has_a_channel_class():
    assert set(CHANNEL_CLASSES) == set(SETTINGS_BY_TYPE)
    assert all(cls.type == kind for kind, cls in CHANNEL_CLASSES.items())


def test_build_channels_for_the_design_config():
    from ..unit.test_config import ENV

    config = load_config(CONFIGS / "design.yml", env=ENV)
    with requests.Session() as http:
        channels = build_channels(config.channels, renderer=Renderer(), http=http)
    assert set(channels) == set(config.channels)
    for name, channel in channels.items():
        assert channel.name == name and channel.settings is config.channels[name]
        assert type(channel) is CHANNEL_CLASSES[config.channels[name].type]
    assert channels["pagerduty"].per_alert and not channels["slack-critical"].per_alert
    assert channels["sms-oncall"].accepts_level("L1") and not channels["sms-oncall"].accepts_level("L2")
