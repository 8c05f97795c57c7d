"""The sync client, generated from ``_async``: never edit by hand."""
