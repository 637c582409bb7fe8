"""Scaling-law analysis over run folders: collect -> fits (power laws, Chinchilla approach 3), compute frontier,
optimal hyper-parameters per size, convergence speedup, runtime overhead. Reads files only (design.md)."""

from ant.laws.allocation import ChinchillaAllocation, chinchilla_allocation, frontier_three_ways
from ant.laws.collect import collect, completed, load
from ant.laws.fits import ChinchillaFit, FitError, PowerLawFit, fit_chinchilla, fit_power_law
from ant.laws.frontier import Frontier, compare_fronts, compute_frontier
from ant.laws.hp import HPTrends, hp_trends
from ant.laws.isoflop import IsoFlop, isoflop_profiles
from ant.laws.overhead import overhead_table, read_bench
from ant.laws.speedup import Speedup, convergence_speedup

__all__ = [
    "ChinchillaAllocation",
    "ChinchillaFit",
    "FitError",
    "Frontier",
    "HPTrends",
    "IsoFlop",
    "PowerLawFit",
    "Speedup",
    "chinchilla_allocation",
    "collect",
    "compare_fronts",
    "completed",
    "compute_frontier",
    "convergence_speedup",
    "fit_chinchilla",
    "fit_power_law",
    "frontier_three_ways",
    "hp_trends",
    "isoflop_profiles",
    "load",
    "overhead_table",
    "read_bench",
]
