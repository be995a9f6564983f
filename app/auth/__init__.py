"""API keys: issued once, stored hashed, verified from memory."""
