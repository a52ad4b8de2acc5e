"""Fakes shipped for tests: a recording listener and a dummy backend (no processes)."""

from worldtree.testing.dummy import DummyBackend
from worldtree.testing.recording import RecordingListener, run_pipeline_text

__all__ = ["DummyBackend", "RecordingListener", "run_pipeline_text"]
