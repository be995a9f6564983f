"""The Redis mirror: key layout, value encoding, the version guard and the in-process L1."""
