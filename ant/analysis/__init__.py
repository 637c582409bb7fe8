"""One module per paper figure/table; each runs as `python -m ant.analysis.NAME --results DIR` (see common.py).
`ant fit`, `ant figures` and `ant report` run fit_laws, make_figures and report; `ant study` the CPU study."""
