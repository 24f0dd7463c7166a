"""Report stage: the probe, the output change and GLUE as tables (CSV, Markdown, LaTeX) and figures (PNG, PDF).

One module per table or figure family, over one table writer and one figure definition:

- :mod:`.collect`         reading the earlier stages' outputs (probe CSVs, fine-tuning cells, predictions)
- :mod:`.probe`           the probe table, the per-model probe figure, the base-and-variants figure
- :mod:`.output_change`   the output-change table and figure
- :mod:`.similarity`      the layer-similarity tables and the per-base CKA / angular-distance figure
- :mod:`.variants`        the variants table: layer maps, how they were chosen, which variants are one model
- :mod:`.seeds`           GLUE scores per seed: which runs enter the statistics, the average, pairing by seed
- :mod:`.glue`            the GLUE table (mean ± sd over seeds) and the deltas figure
- :mod:`.significance`    variant against base and controls: tests over seeds (the headline) and over dev examples
- :mod:`.expected_max`    mean, median and expected maximum over k seeds (Dodge et al.)
- :mod:`.cost`            the cost table
- :mod:`.tables`          the one table writer (CSV, Markdown, LaTeX through pandas' Styler) and cell formats
- :mod:`.figures`         the one figure style and saver (PNG and PDF)
"""

from .probe import plot_probe  # the probe rule draws each model's figure as it probes it

__all__ = ["plot_probe"]
