"""The drafts and their review: releases, the record versions drafts were made from, drafts in
every language and channel, their revisions, skipped languages (`store`; migrations 2 and 3), the
outbox of notices that drafts await review, written with them (`notices`; migration 5), reviewer accounts and
sign-ins (`reviewers`), and the review service the CLI, the review page and XLIFF imports share
(`service`: compare-and-set decisions and edits, within the actor's languages and each
platform's limit).

These tables are written only here: preparing adds drafts through `store`, publishing marks
them published through `store`, and everything else goes through `service`.
"""
