"""A document under the size limit must not be able to take gigabytes to load.

Found by attack (issue 7): ``MAX_DOCUMENT_BYTES`` (16 MB) and ``MAX_ALIAS_NODES`` bound a bomb,
but not a plain document of many small nodes: 15 MB of ``- {}`` lines took 23 s and 2.3 GB to
validate, 16 MB of ``[1,1,1,…]`` 66 s and 4.6 GB (``yaml.compose`` builds every node, with its
marks, before anything counts them). The 830 KB benchmark document has far fewer nodes.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

#: Address space the loader may use: several times what the 2,000-job benchmark file needs.
MEMORY_LIMIT = 1024 * 1024 * 1024


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "worldtree.cli.main", "validate", str(path)], cwd=path.parent,
                          capture_output=True, text=True, timeout=60, preexec_fn=_limit_memory)


def test_a_small_document_validates_under_the_memory_limit(tmp_path: Path) -> None:
    """The limit itself does not break worldtree (so the test below fails for the right reason)."""
    doc = tmp_path / "ok.yaml"
    doc.write_text("name: x\nstages:\n  - name: s\n    jobs:\n      - name: j\n        steps:\n"
                   "          - command: echo hi\n")
    proc = _validate(doc)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.timeout(120)
def test_a_flood_of_tiny_nodes_is_a_located_error_not_gigabytes(tmp_path: Path) -> None:
    doc = tmp_path / "many.yaml"
    doc.write_text("name: x\nstages: []\nz:\n" + "- {}\n" * 3_000_000)
    proc = _validate(doc)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.startswith(f"{doc}:"), proc.stderr[-2000:]
