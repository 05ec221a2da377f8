"""`python -m pbxware_simulator`: the same as the `pbxware-simulator` console script."""

from .cli import main

raise SystemExit(main())
