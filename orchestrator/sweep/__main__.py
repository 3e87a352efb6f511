"""`python -m orchestrator.sweep`."""

from orchestrator.sweep.cli import console_main

console_main()
