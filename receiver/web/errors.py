"""JSON errors for every failure the API can answer."""

from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException


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


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return exc.response()

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        resp = jsonify({"error": (exc.name or "error").lower().replace(" ", "_"), "detail": exc.description or ""})
        resp.status_code = exc.code or 500
        return resp
