"""Helpers shared by the tests (no tests here): data fixtures, engine stand-ins, export stand-ins, the
tiny ToyCity overrides, the repository's recipes, model configs and tools."""
