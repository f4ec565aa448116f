"""An application module that fails while it is imported (the CLI must say so in one line)."""

raise RuntimeError("the settings file is missing")
