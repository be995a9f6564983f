"""What an order (3101/3102) or a fee row (2204/2301) becomes: a check line, and how the answer
refers back to it."""

from __future__ import annotations

from typing import NamedTuple

from app.checks.lines import Line
from app.interfaces.national.envelope import Amount, Refused


class Item(NamedTuple):
    line: Line  # claim_id: the order's rx_id or the row's feedetl_sn
    institution_field: str  # where the line's institution came from: a 403 names it
    refs: dict[str, str]  # ids the answer echoes (patn_id, mdtrt_id, rx_id / feedetl_sn, …)
    amount: Amount | None  # sumamt / det_item_fee_sumamt: vola_amt of a blocking finding


def too_many(limit: int, field: str) -> Refused:
    """More lines than one request may judge (``CLAIMGATE_BATCH_MAX_LINES``)."""
    return Refused(
        "BATCH_TOO_LARGE", field, f"one request judges at most {limit} orders or fee rows; split it"
    )
