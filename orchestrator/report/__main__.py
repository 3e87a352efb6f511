"""`python -m orchestrator.report`."""

from orchestrator.report.cli import main

raise SystemExit(main())
