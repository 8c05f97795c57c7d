"""Every line of the SDK that waits, written once; ``_sync/`` is generated from here."""
