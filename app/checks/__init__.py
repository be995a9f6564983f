"""The check contract: POST /v1/checks and /v1/checks/batch."""
