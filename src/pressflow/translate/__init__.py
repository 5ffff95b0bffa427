"""The translation stage: segment, protect, translate in batches, restore, check.

`stage.translate_documents` is the entry point; the other modules are its parts:
`segment` (documents to sentences), `protect` (what must survive untranslated), `models`
(installed Argos packages and routes between languages), `engine` (CTranslate2 batches).
"""
