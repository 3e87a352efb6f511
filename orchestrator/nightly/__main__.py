"""`python -m orchestrator.nightly`."""

from orchestrator.nightly.cli import main

raise SystemExit(main())
