"""Errors of ``hopmem serve`` in OpenAI's shape: ``{"error": {"message", "type", "code"}}``, one clear sentence.

The memory engine raises :class:`~hopmem.memory.errors.HopmemError` subclasses whose messages are already one
sentence a user can act on; this module only maps each class to an HTTP status, and turns FastAPI's validation
errors (malformed JSON, a missing or mistyped field) into one sentence too.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hopmem.memory.errors import (
    ConfigError,
    HopmemError,
    InputError,
    LLMError,
    ModelNotAvailableError,
    StoreError,
)

log = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error the server answers with ``status`` and one sentence."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def error_body(status: int, message: str, code: str) -> dict[str, Any]:
    """The OpenAI error shape."""
    return {"error": {"message": message, "type": _TYPES.get(status, "server_error"), "code": code}}


def error_response(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code), status_code=status, headers=headers)


def status_of(exc: HopmemError) -> tuple[int, str]:
    """The HTTP status and error code of an engine error."""
    from hopmem.memory.engine import WriteBlockedError

    if isinstance(exc, InputError):
        text = str(exc)
        if text.startswith("There is no memory"):
            return 404, "not_found"
        if text.startswith("This Memory acts as agent") or text.startswith("Only the user can"):
            return 403, "forbidden"
        return 400, "invalid_input"
    if isinstance(exc, WriteBlockedError):
        return 409, "write_blocked"
    if isinstance(exc, LLMError | ModelNotAvailableError):
        return 503, "llm_unavailable"
    if isinstance(exc, StoreError):
        return 503, "store_unavailable"
    if isinstance(exc, ConfigError):
        return 500, "config_error"
    return 400, "hopmem_error"


def _validation_sentence(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return 400, "The request body is not valid JSON; send a JSON object."
    if tuple(first.get("loc", ())) == ("body",) and first.get("type") in ("model_attributes_type", "dict_type"):
        return 400, "The request body must be a JSON object sent with 'Content-Type: application/json'."
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "the request body"
    message = str(first.get("msg", "is invalid")).rstrip(".")
    if first.get("type") == "missing":
        return 422, f"The field {where!r} is required."
    return 422, f"The field {where!r} is invalid: {message}."


def install_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the OpenAI shape."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.code)

    @app.exception_handler(HopmemError)
    async def _hopmem(_: Request, exc: HopmemError) -> JSONResponse:
        status, code = status_of(exc)
        return error_response(status, str(exc), code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _validation_sentence(exc)
        return error_response(status, message, "invalid_json" if status == 400 else "invalid_field")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "The request failed."
        if exc.status_code == 404 and message == "Not Found":
            message = "There is no such endpoint; see /docs for the API."
        elif exc.status_code == 405:
            message = "This endpoint does not take that HTTP method; see /docs for the API."
        return error_response(exc.status_code, message, "http_error", headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, f"The server failed ({type(exc).__name__}); see its log.", "internal_error")
