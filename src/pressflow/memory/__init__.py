"""The translation memory: its tables (`store`), the memory the translation stage reads and
writes (`store.SqlMemory`), fuzzy search over a trigram index (`fuzzy`), how similar two
sentences are and how a match is reused (`scoring`), and TMX files in and out (`tmx`).

The memory's tables are written only here; the review service saves a reviewer's sentences
through `SqlMemory`, and pages and exports ask `fuzzy.draft_suggestions`.
"""
