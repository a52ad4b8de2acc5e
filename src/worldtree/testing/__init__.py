"""Fakes shipped for tests: a recording listener and a dummy backend (no processes)."""

from worldtree.testing.recording import RecordingListener, run_pipeline_text

__all__ = ["RecordingListener", "run_pipeline_text"]
