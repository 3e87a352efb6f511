"""`python -m orchestrator.sweep`."""

from orchestrator.sweep.cli import main

raise SystemExit(main())
