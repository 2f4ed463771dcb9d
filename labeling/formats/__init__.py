"""Readers and writers of the file formats Stepwise exchanges (validation lives here, writes in services)."""
