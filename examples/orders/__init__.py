"""The orders service: a team's own handler and table on sendguard's `Outbox` (docs/library.md)."""
