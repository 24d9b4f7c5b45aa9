"""ftreg's own plugins: dataset formats, dataset sources and training strategies.

They are registered through the same hooks as third-party plugins, and read as examples of them.
"""
