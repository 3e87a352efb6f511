"""`python -m jepa_core.bench`: :func:`jepa_core.bench.cli.main`."""

from jepa_core.bench.cli import main

raise SystemExit(main())
