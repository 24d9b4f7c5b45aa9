pytest_plugins = ["ftreg.testing"]  # ftreg's fixtures: registry, embedded_base, register_plugin
