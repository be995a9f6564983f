"""Adapters for other interface shapes: each parses its own envelope into check lines, calls the
check use case (app.checks.usecase) and renders the verdicts in its own shape. Nothing below
them knows these shapes exist."""
