"""Prepare: event records become drafts awaiting review, in every member language (`pipeline`).

Registers each release and the record version its drafts are made from (`drafts.store`),
renders the English release and posts (`render`), translates them (`translate`, reusing the
memory through `memory.store.SqlMemory`) and stores every draft for review.
"""
