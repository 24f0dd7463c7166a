"""``python -m layerlens.cluster check [snakemake options]``."""

from .preflight import main

raise SystemExit(main())
