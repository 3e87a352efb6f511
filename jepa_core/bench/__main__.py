"""`python -m jepa_core.bench`."""

from jepa_core.bench import main

raise SystemExit(main())
