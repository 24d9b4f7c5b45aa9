"""Files shipped with ftreg: the embedded base's weights (tiny-gpt2/) and the bundled datasets (support/)."""
