"""Prefect flows: thin wiring over the plain functions in `pressflow`."""
