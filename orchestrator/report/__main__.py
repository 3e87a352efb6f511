"""`python -m orchestrator.report`."""

from orchestrator.report.compose import main

raise SystemExit(main())
