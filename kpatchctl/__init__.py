"""The ``kpatch`` command: load, unload, list and install livepatch modules."""
