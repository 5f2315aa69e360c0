"""The test sink stands in for a provider: a request whose sender died mid-body is not a request."""

from __future__ import annotations

import socket

import requests

from ..support.process import wait_until
from ..support.sink import HttpSink


def test_a_body_cut_short_by_a_dying_sender_is_never_recorded():
    sink = HttpSink().start()
    try:
        host, port = sink.server.server_address
        with socket.create_connection((host, port), timeout=5) as conn:
            conn.sendall(b"POST /v2/enqueue HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"routing_")
            conn.shutdown(socket.SHUT_WR)  # the sender is gone: no more bytes will come
            assert conn.recv(100) == b""  # closed without an answer
        assert requests.post(sink.url + "/v2/enqueue", json={"whole": True}, timeout=5).status_code == 200
        wait_until(lambda: sink.ok(), timeout=5, what="the whole request")
        assert [r.json() for r in sink.received] == [{"whole": True}]
    finally:
        sink.stop()
