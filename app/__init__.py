"""claimgate: real-time claim gating for medical-insurance settlement."""

__version__ = "0.1.0"
