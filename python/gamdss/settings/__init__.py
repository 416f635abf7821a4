"""Settings: vocabularies and the validated settings objects (no torch import)."""
