"""The decision log: every answered line recorded, searchable, and re-judged against today's
truth (``claimgate decisions replay``)."""
