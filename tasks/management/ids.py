"""Ids typed on the command line, with the one-line errors every command gives."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db.models import Model, QuerySet


def by_id[M: Model](rows: QuerySet[M], raw: str, what: str) -> M:
    """The row of `rows` whose id `raw` is, or CommandError("<what> id must be ...")."""
    text = raw.strip()
    if not (text.isascii() and text.isdigit() and len(text) < 19):
        raise CommandError(f"{what} id must be a whole number, got {raw!r}")
    found = rows.filter(pk=int(text)).first()
    if found is None:
        raise CommandError(f"{what} {int(text)} does not exist")
    return found
