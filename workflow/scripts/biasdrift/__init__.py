"""biasdrift: how fine-tuning changes bias in language models.

All logic of the workflow lives in this package; the Snakemake entry scripts beside it
are thin. Importing the package itself is cheap (no torch), because ``rules/common.smk``
imports ``biasdrift.config`` at parse time.
"""

__version__ = "0.1.0"
