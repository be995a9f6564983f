"""What a monitoring stack sees: metrics (``metrics``), JSON logs (``logs``), each request's
id and log line (``context``, ``requests``). docs/observability.md."""
