pytest_plugins = ["ftreg.testing"]  # ftreg's fixtures: registry, embedded_base, fake_strategies, register_plugin
