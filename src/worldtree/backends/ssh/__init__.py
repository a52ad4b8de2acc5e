"""SSH targets: steps on remote hosts over pooled asyncssh connections (see ``docs/ssh.md``).

:mod:`.remote` (the text run remotely; pure) and :mod:`.backend` (the engine contract). The
connections themselves are in :mod:`worldtree.connectors.ssh`. Nothing is imported here.
"""
