"""Composing a base with a registry adapter, for generation and serving."""
