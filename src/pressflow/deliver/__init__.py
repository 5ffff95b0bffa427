"""Delivery: approved posts and releases, per language, to the accounts configured for that
language, exactly once, taken back when a release is withdrawn (docs/channels.md)."""
