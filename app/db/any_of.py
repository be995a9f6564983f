"""``column = ANY($1)``: membership in a list of any length, as one array parameter.

``column.in_(values)`` sends one parameter per value, and PostgreSQL's protocol takes at most
32,767 per statement: re-judging a hospital with more staff than that failed. One array
parameter has no such limit and uses the same index.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY


def any_of(column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
