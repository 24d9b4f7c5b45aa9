"""Base models: resolving ``--base`` to a local directory with a fingerprint, and the embedded tiny GPT-2."""
