"""The translation stage: segment, protect, translate in batches, restore, check.

`stage.translate_documents` is the entry point; the other modules are its parts:
`segment` (documents to sentences), `marks` (the templates' keep marks and the placeholder
format), `protect` (what must survive untranslated), `checks` (the QA checks, one registry),
`layout` (where each sentence sits in a draft's text, through every edit). The stage talks to
translation through `stage.Engine` (beside `stage.Memory`); `engine.ArgosEngine` (installed
Argos packages, `models`, run by CTranslate2) is the default implementation. `testmodel` builds
random-weight test packages for `pressflow models build-test` and the tests only.
"""
