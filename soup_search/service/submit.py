"""Adding a search: its folder, its stored config and its row, queued for the reconciler.

One place for the API's ``POST /v1/searches`` and for a watch's tick, which starts searches too.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from soup_search.service.intake import Intake
from soup_search.service.models import QUEUED, Search, Transition, utcnow
from soup_search.service.settings import Settings


def add_search(s: Session, settings: Settings, owner_id: int, search_id: str, taken: Intake,
               reason: str = "created") -> Search:
    """A new queued search (in the caller's transaction); the caller wakes the reconciler."""
    folder = settings.searches_dir / search_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(taken.text)
    now = utcnow()
    search = Search(id=search_id, owner_id=owner_id, name=taken.config.name, config=taken.text,
                    request_hash=taken.request_hash, state=QUEUED, out_dir=str((folder / "run").resolve()),
                    attempts=0, submissions=0, progress={"trials": 0, "budget": taken.config.search.n_trials},
                    created_at=now, updated_at=now)
    s.add(search)
    s.add(Transition(search_id=search_id, from_state=None, to_state=QUEUED, reason=reason, at=now))
    s.flush()
    return search
