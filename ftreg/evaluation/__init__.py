"""Measuring versions: loss, perplexity and generation metrics on a dataset, stored with the
version; comparisons side by side; promotion gated on a metric."""
