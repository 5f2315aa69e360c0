"""http_reader.RequestReader: heads and bodies read in pieces, limits before reading, chunked bodies counted."""

from __future__ import annotations

import pytest

from receiver.http_reader import HEAD_TIMEOUT, OVERFLOW_HEADER, SPOOL_OVER, Refused, RequestReader

HEAD = b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def reader(limit=100, keep=None):
    return RequestReader(0.0, lambda head: (limit, keep))


def body(r: RequestReader) -> bytes:
    return r.body_file().read()


def test_a_chunked_body_that_turns_out_too_large_was_never_held_in_memory():
    """Its size is unknown until its end: past SPOOL_OVER it goes to a temporary file, then is cut to the prefix."""
    r = reader(limit=8 * 1024 * 1024, keep=1024)
    r.feed(HEAD + b"Transfer-Encoding: chunked\r\n\r\n", 1.0)
    chunk = b"100000\r\n" + b"x" * 0x100000 + b"\r\n"
    for _ in range(9):
        if r.complete:
            break
        r.feed(chunk, 1.0)
        assert r.body._rolled or r.kept <= SPOOL_OVER  # in memory only up to SPOOL_OVER
    assert r.complete and r.overflow and body(r) == b"x" * 1024


def feed_bytewise(r: RequestReader, data: bytes) -> None:
    for i in range(len(data)):
        r.feed(data[i:i + 1], 1.0)


def test_a_head_and_body_in_single_bytes_make_one_plain_request():
    r = reader()
    feed_bytewise(r, HEAD + b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\nhello")
    assert r.complete and r.expects_continue
    head = r.request_head()
    assert head.startswith(b"POST /webhook HTTP/1.1\r\n") and head.endswith(b"\r\n\r\n") and body(r) == b"hello"
    assert b"Content-Length: 5" in head and b"Expect" not in head


def test_chunked_bodies_are_decoded_counted_and_handed_on_with_a_length():
    r = reader()
    feed_bytewise(r, HEAD + b"Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n")
    assert r.complete and body(r) == b"hello world"
    assert b"Transfer-Encoding" not in r.request_head() and b"Content-Length: 11" in r.request_head()


@pytest.mark.parametrize("framing, body", [
    (b"Content-Length: 101\r\n", b""),  # refused from the head, before a byte of the body
    (b"Transfer-Encoding: chunked\r\n", b"40\r\n" + b"a" * 64 + b"\r\n40\r\n" + b"a" * 64 + b"\r\n"),
])
def test_a_body_over_its_limit_is_refused_413_as_soon_as_it_is_known(framing, body):
    r = reader(limit=100)
    with pytest.raises(Refused) as refused:
        r.feed(HEAD + framing + b"\r\n" + body, 1.0)
    assert refused.value.status == 413 and r.received <= 128


def test_an_oversized_webhook_body_is_handed_on_as_a_prefix_with_the_overflow_header():
    r = reader(limit=100, keep=10)
    r.feed(HEAD + b"Content-Length: 1000000000\r\n" + OVERFLOW_HEADER.encode() + b": 1\r\n\r\n" + b"b" * 50, 1.0)
    assert r.complete and body(r) == b"b" * 10
    request = r.request_head()
    assert request.count(OVERFLOW_HEADER.encode()) == 1 and f"{OVERFLOW_HEADER}: 1000000000".encode() in request


@pytest.mark.parametrize("raw, status", [
    (HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (HEAD + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    (HEAD + b"Content-Length: -1\r\n\r\n", 400),
    (b"GARBAGE\r\n\r\n", 400),
    (HEAD + b"no colon here\r\n\r\n", 400),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (HEAD + b"X-Big: " + b"a" * 70000, 431),
])
def test_bad_framing_is_refused(raw, status):
    with pytest.raises(Refused) as refused:
        reader().feed(raw, 1.0)
    assert refused.value.status == status


def test_deadlines_bound_the_head_and_grow_with_the_body():
    r = reader(limit=10 * 1024 * 1024)
    assert r.deadline() == HEAD_TIMEOUT
    r.feed(HEAD + b"Content-Length: 8388608\r\n\r\n", 3.0)
    assert r.deadline() == pytest.approx(3.0 + 30.0 + 8.0)
