"""The translation memory: its tables (`store`, migration 4), the memory the translation stage
reads and writes (`store.SqlMemory`), fuzzy search over a trigram index (`fuzzy`), and how
similar two sentences are and how a match is reused (`scoring`).

The memory's tables are written only here: the review service and TMX imports
(`exchange.tmx`) save through `SqlMemory`, a TMX export reads `store.memory_entries`, and pages
and exports ask `fuzzy.draft_suggestions`.
"""
