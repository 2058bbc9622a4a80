"""The API's errors: one JSON line ``{"error": ...}`` (with ``problems`` for a bad config), never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from soup_search.errors import ConfigError, SoupSearchError

log = logging.getLogger("soup_search.service")


class APIError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def error(status: int, message: str, problems: list[str] | None = None, headers: dict | None = None) -> JSONResponse:
    body = {"error": message} | ({"problems": problems} if problems is not None else {})
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api(request: Request, exc: APIError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error(exc.status, exc.message, headers=headers)

    @app.exception_handler(ConfigError)
    async def _config(request: Request, exc: ConfigError):
        return error(422, str(exc), exc.problems)

    @app.exception_handler(SoupSearchError)
    async def _user(request: Request, exc: SoupSearchError):
        return error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return error(422, "; ".join(problems), problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}; see /docs"
        return error(exc.status_code, message)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error(500, "internal error; the service log has the details")
