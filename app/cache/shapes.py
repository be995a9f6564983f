"""The documents a check reads, named once: what app.projection.docs writes and what
app.checks.decide, app.checks.service and the admin reads read.

They are compact on purpose — short keys, rows as JSON arrays — because millions of
practitioner views live in Redis (about 220 bytes each, docs/performance.md). So the names here
cost nothing at run time: the TypedDicts are plain dicts, the row types are the lists JSON gives
back (typed as the tuples they are read as, so mypy checks each index), and the index constants
are module globals that read about as fast as a literal (measured: docs/performance.md, "What
the redesign of issue 20 costs the hot path"). The one object with a class of its own is
:class:`Entry`.

Dates are ISO strings (``YYYY-MM-DD``); ``to`` is exclusive and ``None`` means open-ended.

Changing a shape changes what Redis and the ``projections`` table hold: see
docs/contributing.md ("Changing a document shape") before you do.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple, NotRequired, TypedDict

# -- rows ---------------------------------------------------------------------------------------
# An interval of a status timeline: [from, to | None, status, rule, message, emergency_exempt].
# status is an engine status (app.policy: "suspended", "terminated", "code_locked",
# "code_cancelled", "warning"); emergency_exempt is 1 where the region's emergency exemption
# lifts it, else 0.
IntervalRow = tuple[str, str | None, str, str, str, int]
FROM: Final = 0
TO: Final = 1
STATUS: Final = 2
RULE: Final = 3
MESSAGE: Final = 4
EXEMPT: Final = 5

# A registration at the view's institution: [department, from, to | None].
RegistrationRow = tuple[str, str, str | None]
REG_DEPARTMENT: Final = 0
REG_FROM: Final = 1
REG_TO: Final = 2

# A service agreement at the view's institution: [from, to | None].
AgreementRow = tuple[str, str | None]
AGR_FROM: Final = 0
AGR_TO: Final = 1


# -- documents ----------------------------------------------------------------------------------
class DepartmentDoc(TypedDict):
    n: str  # name
    s: list[IntervalRow]  # settlement suspensions


class InstitutionDoc(TypedDict):
    """Key ``cg:{inst}:i`` — the institution, its departments and department aliases."""

    n: str  # name
    rg: str  # region code (6 digits); shown to officers, not read by checks
    pf: str  # the policy profile's id
    ee: int  # 1: the profile exempts emergencies (急诊/抢救) from exempt-marked findings
    ar: int  # 1: the profile requires a service agreement
    s: list[IntervalRow]  # the institution's own agreement (warnings left out)
    d: dict[str, DepartmentDoc]  # by department code
    da: NotRequired[dict[str, str]]  # local code → department code; absent when none


class ViewDoc(TypedDict):
    """Key ``cg:{inst}:p:<token>`` — one practitioner as checks at one institution see them."""

    c: str  # display code (an ID number masked)
    k: str  # category: doctor, nurse, pharmacist, technician, carer
    r: list[RegistrationRow]  # registrations here, sorted
    a: list[AgreementRow]  # agreements here, sorted
    s: list[IntervalRow]  # blocking statuses that apply here
    w: list[IntervalRow]  # warnings (警告/约谈) that apply here


class KnownDoc(TypedDict):
    """Key ``cg:pk:{<token>}`` — the practitioner exists somewhere (so not "unknown")."""

    c: str  # display code


class AliasDoc(TypedDict):
    """Key ``cg:{inst}:a:<local code>`` — a hospital's local practitioner code."""

    t: str | None  # the practitioner's token; None once the alias was removed


class InstitutionAliasDoc(TypedDict):
    """Key ``cg:ia:{<local code>}`` — an agency-wide local institution code."""

    t: str | None  # the national institution code; None once the alias was removed


Doc = InstitutionDoc | ViewDoc | KnownDoc | AliasDoc | InstitutionAliasDoc


# -- cache entries ------------------------------------------------------------------------------
class Entry(NamedTuple):
    """A document with its projection version, as Redis, the L1 and PostgreSQL give it back.

    ``doc`` is typed ``Any``: one read fetches several kinds of key at once, and the reader,
    who knows which key it asked for, names the shape where it uses it (``inst:
    InstitutionDoc = entry.doc``) — free at run time, where a ``cast`` would be a call.
    """

    version: int
    doc: Any


new_entry = tuple.__new__
"""``new_entry(Entry, (version, doc))``: an :class:`Entry` without the Python-level
``__new__`` a NamedTuple's constructor runs (≈ 0.2 µs against 0.05 µs; a check decodes two or
three entries per line not remembered)."""
