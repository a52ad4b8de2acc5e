"""SSH connections: :mod:`.target` (URLs -> endpoints; pure), :mod:`.pool` (one connection per
endpoint per run), :mod:`.transfer` (SFTP). Nothing is imported here, so the pure parts load
without asyncssh.
"""
