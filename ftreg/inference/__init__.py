"""Using a version: composing a base with an adapter to generate, and exporting to plain Hugging Face layout."""
