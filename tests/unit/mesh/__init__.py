"""Unit tests of the pure domain layer, meshcanary.mesh."""
