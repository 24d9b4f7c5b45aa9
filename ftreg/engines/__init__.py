"""The two training engines, the hand-written loop and the transformers `Trainer`, and what they share.

Batching, the optimiser's parameter groups, checkpoint naming and the metrics both report live in
small modules of their own, so neither engine borrows from the other.
"""
