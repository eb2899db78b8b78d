"""Look for any trace of a customer in every table of a database, tracker store included."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

import sqlalchemy as sa

from bot.db.session import get_engine


def traces(database_url: str, needles: Iterable[str]) -> list[str]:
    """'table.column contains needle' for every cell of every table holding one of `needles`."""
    # Whole tokens only: "web:5" must not match inside "web:52".
    # Also as JSON escapes it ("M\\u00fcller"), the way tracker events store text.
    forms = {(n, form) for n in needles if n for form in (n, json.dumps(n)[1:-1])}
    wanted = [(n, re.compile(rf"(?<!\w){re.escape(f.lower())}(?!\w)")) for n, f in forms]
    found: list[str] = []
    engine = get_engine(database_url)
    with engine.connect() as connection:
        metadata = sa.MetaData()
        metadata.reflect(connection)
        for table in metadata.sorted_tables:
            for row in connection.execute(sa.select(table)).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    text = str(value).lower()
                    found += [
                        f"{table.name}.{column} contains {n!r}"
                        for n, pattern in wanted
                        if pattern.search(text)
                    ]
    return sorted(set(found))
