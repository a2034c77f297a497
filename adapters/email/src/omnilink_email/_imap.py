"""IMAP receiving (placeholder until the poller lands)."""
