"""The service's settings in one place: ``soup-search serve`` flags, or SOUP_SEARCH_* variables."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from soup_search.service.db import default_url

#: request bodies above this are refused with 413
MAX_BODY_BYTES = 1 << 20


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOUP_SEARCH_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Field(default_factory=lambda: platformdirs.user_data_path("soup-search") / "service")
    db: str | None = None  # default: sqlite in data_dir
    ray_address: str | None = None  # None: an embedded local head with the job server
    max_running: int = Field(1, ge=1)
    max_attempts: int = Field(3, ge=1)
    reconcile_s: float = Field(2.0, gt=0)
    allowed_roots: tuple[Path, ...] = ()  # default: data_dir/inputs
    #: the watch scheduler: seconds between passes, and how long its lease holds without renewal
    scheduler_s: float = Field(5.0, gt=0)
    lease_s: float = Field(30.0, gt=0)
    #: webhook deliveries: attempts before giving up, the first retry's delay (doubling), a POST's timeout
    webhook_attempts: int = Field(5, ge=1)
    webhook_backoff_s: float = Field(2.0, gt=0)
    webhook_timeout_s: float = Field(5.0, gt=0)

    @property
    def db_url(self) -> str:
        return self.db or default_url(self.data_dir)

    @property
    def roots(self) -> tuple[Path, ...]:
        roots = self.allowed_roots or (self.data_dir / "inputs",)
        return tuple(Path(r).expanduser().resolve() for r in roots)

    @property
    def searches_dir(self) -> Path:
        return self.data_dir / "searches"

    @property
    def watches_dir(self) -> Path:
        return self.data_dir / "watches"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
