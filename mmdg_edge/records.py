"""The one JSON record of a verdict, for every command that prints verdicts (``check``, ``live``).

Its JSON Schema ships in the package (``mmdg_edge/assets/verdict.schema.json``); both commands are
tested against it. Commands that score a stream fill ``session`` and ``skipped``; ``check`` scores
framesets on their own and leaves them null.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

from .assets import ASSETS
from .frames import FrameSet, Verdict

VERDICT_SCHEMA = ASSETS / "verdict.schema.json"


def verdict_record(verdict: Verdict, frameset: Any = None, session: Any = None,
                   skipped: Optional[int] = None) -> Dict[str, Any]:
    """The verdict as the one JSON-serialisable record (see ``VERDICT_SCHEMA``).

    Args:
        verdict: the verdict.
        frameset: the frameset it is about (its name, for image folders), if at hand.
        session: the SessionDecision after it (stream commands), else None.
        skipped: framesets a real-time stream dropped just before it, else None.
    """
    name = frameset.metadata.get("name") if isinstance(frameset, FrameSet) else None
    record = {**verdict.to_dict(), "name": name if isinstance(name, str) else None,
              "timings_ms": {k: round(v, 2) for k, v in verdict.timings_ms.items()},
              "session": None, "opened": None, "skipped": skipped}
    if session is not None:
        record.update(session=session.status, opened=session.opened)
    return record


def load_schema() -> Dict[str, Any]:
    return json.loads(VERDICT_SCHEMA.read_text(encoding="utf-8"))
