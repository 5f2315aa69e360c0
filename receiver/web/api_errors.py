"""JSON errors for every failure the API can answer."""

from __future__ import annotations

from flask import Flask, jsonify
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from ..store.db import QueryTimeout, StorageUnavailable, is_unavailable


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str = "", *, headers: dict | None = None, **extra):
        super().__init__(detail or error)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def response(self):
        body = {"error": self.error}
        if self.detail:
            body["detail"] = self.detail
        body.update(self.extra)
        resp = jsonify(body)
        resp.status_code = self.status
        resp.headers.update(self.headers)
        return resp


def found(value, what: str, ident: int):
    """`value`, or a 404 that names what has no such id (`found(row, "alert", 7)`)."""
    if value is None:
        raise ApiError(404, "not_found", f"no {what} with id {ident}")
    return value


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return exc.response()

    @app.errorhandler(SQLAlchemyError)
    @app.errorhandler(StorageUnavailable)
    def _database_error(exc: Exception):
        # Any route: a database that is down, locked or overloaded is "try again later", never a 500.
        if is_unavailable(exc):
            return ApiError(503, "storage_unavailable", "the database is unavailable or locked; retry",
                            headers={"Retry-After": "5"}).response()
        raise exc

    @app.errorhandler(QueryTimeout)
    def _query_timeout(exc: QueryTimeout):
        # The database stopped the read: no worker is held past database.query_timeout, whatever was asked.
        return ApiError(503, "query_timeout",
                        f"{exc}: narrow the request (a shorter period, fewer or simpler match= regexes), or raise "
                        "database.query_timeout in receiver.yml", headers={"Retry-After": "5"}).response()

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        resp = jsonify({"error": (exc.name or "error").lower().replace(" ", "_"), "detail": exc.description or ""})
        resp.status_code = exc.code or 500
        # Keep what the exception says besides its body: Allow on a 405 (RFC 9110), Location on a redirect.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                resp.headers[name] = value
        return resp
