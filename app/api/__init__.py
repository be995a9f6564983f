"""The HTTP application: wiring, dependencies, error rendering, health."""
