"""The review page: reviewers read machine translations beside the source, fix, approve or reject.

A FastAPI app rendering plain HTML forms (Jinja2, autoescaped), so every essential action works
without JavaScript; small inline scripts only keep a live length count for posts (counted by the
server) and say when background publishing is done. It also serves the published outputs under
/feeds/ and /site/, so a reviewer can see the result.

Edits go through `drafts.service.edit` (a new revision, refused if someone saved in between:
the store decides that atomically, so of two saves made at once exactly one wins);
the sentences a reviewer changed become human entries in the translation memory, which the next
prepare prefers over the machine. Decisions (approve, reject, approve-all) carry the revision and
status the reviewer saw and are refused, saying who did what meanwhile, if either changed: nobody
replaces a decision, or approves a text, they did not see.

One module per page: `signin`, `queue`, `draft`, and `publish_now` (the publish button and
publishing after an approval); `base` holds what they share, and `app` builds the app from them.
"""

from .app import ServerNotConfigured, create_app, proxy_options, run_server

__all__ = ["ServerNotConfigured", "create_app", "proxy_options", "run_server"]
