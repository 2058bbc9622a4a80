"""The service on a real PostgreSQL 15 (the root `postgres` fixture, on loopback): migrations, tokens, searches,
transitions and audit rows land in it, and a restarted service reads them back."""

from __future__ import annotations

import sqlalchemy as sa

from soup_search.service.db import head_revision
from tests.service.conftest import Service, free_port, make_token, tiny_config_text


def test_the_service_keeps_its_state_in_postgres(postgres, tmp_path):
    """``postgres`` is the root fixture: a real server (tests/conftest.py)."""
    db = postgres.create_database("service")
    token = make_token(tmp_path, "alice", "write", db=db)
    svc = Service(tmp_path, db=db, args=("--ray-address", f"http://127.0.0.1:{free_port()}")).start()
    try:
        with svc.client(token) as api:
            created = api.post("/v1/searches?id=pg-1", content=tiny_config_text(), headers={"content-type": "text/yaml"})
            assert created.status_code == 201, created.text
            assert api.post("/v1/searches/pg-1/cancel").json()["state"] == "cancelled"
    finally:
        svc.stop()
    engine = sa.create_engine(db)
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        assert c.execute(sa.text("SELECT state FROM searches WHERE id = 'pg-1'")).scalar() == "cancelled"
        moves = c.execute(sa.text("SELECT from_state, to_state FROM transitions WHERE search_id = 'pg-1' ORDER BY id")).all()
        assert [tuple(m) for m in moves] == [(None, "queued"), ("queued", "cancelled")]
        audited = c.execute(sa.text("SELECT method, path, status FROM audit ORDER BY id")).all()
        assert ("POST", "/v1/searches/pg-1/cancel", 200) in [tuple(a) for a in audited]
        created_at = c.execute(sa.text("SELECT created_at FROM searches WHERE id = 'pg-1'")).scalar()
        assert created_at.tzinfo is not None  # timestamps keep their zone
    engine.dispose()
    again = Service(tmp_path, db=db, args=("--ray-address", f"http://127.0.0.1:{free_port()}")).start()
    try:
        with again.client(token) as api:
            body = api.get("/v1/searches/pg-1").json()
        assert body["state"] == "cancelled" and body["owner"] == "alice"
    finally:
        again.stop()
