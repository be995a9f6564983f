"""Projections: the documents a check reads, recomputed from the ledger on every write."""
