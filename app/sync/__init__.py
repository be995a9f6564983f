"""The sync worker: drains the outbox into Redis and rebuilds a Redis that lost its data."""
