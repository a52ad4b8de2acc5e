"""SSH targets: steps on remote hosts over pooled asyncssh connections (see ``docs/ssh.md``).

Modules: :mod:`.target` (URLs and inventory hosts -> endpoints; pure), :mod:`.remote` (the
text run remotely; pure), :mod:`.pool` (connections), :mod:`.backend` (the engine contract),
:mod:`.transfer` (SFTP). Nothing is imported here, so the pure parts load without asyncssh.
"""
