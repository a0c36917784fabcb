"""Implementation modules of :mod:`cnnlab.d2l` (import that module, not these)."""
