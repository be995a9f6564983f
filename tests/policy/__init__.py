"""Tests of the pure policy engine (no database, no network)."""
