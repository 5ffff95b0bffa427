"""The core every stage stands on: settings, errors, what text and names may contain, safe files,
the database (engines, sessions, locks, the numbered migrations' registry and runner) and the
published site's layout.

It imports no stage: a stage's tables register their migrations with `core.db`, which imports
the table-owning modules by name (`core.db.SCHEMA_MODULES`) before it migrates a store.
"""
