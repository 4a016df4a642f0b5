"""Example services built on sendguard's library API (docs/library.md)."""
