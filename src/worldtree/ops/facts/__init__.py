"""Facts: what a host is, read before an operation decides what to change (pyinfra's
``facts/`` beside ``operations/``). :mod:`.host`: OS, kernel, CPUs, memory of SSH hosts."""
