"""Operator tools: provisioning, the audit of a live table, the trace checker for log files, and the
progress line of long-running commands."""
