"""Delivery: channels that post what publishing wrote (a social platform's API, a partner's
endpoint) live here, one module per channel, beside `publish` and not inside it.

Publishing writes files and tells a WebSub hub which feeds changed (`publish.websub`, a step of
every publish run); a channel here takes a run's `publish.model.PublishReport` and the files it
names, and never writes publishing's ledger or the drafts.
"""
