"""Single-cell RNA denoising (OpenProblems v1 "denoising", as TTT-Discover used it).

Modules: :mod:`.metrics` (MCV split, the paper's MSE and swapped Poisson metrics, the hardened
deviance), :mod:`.data` (celltypist sample, synthetic, pancreas / PBMC / Tabula loaders),
:mod:`.synthetic` (the generator), :mod:`.baselines`, :mod:`.problem` (the trusted split and
scoring), :mod:`.root_program` (the MAGIC-like root program) and :mod:`.task` (the registered task).
Importing this package registers ``denoising``; numpy and scipy only (h5py for the paper's .h5ad
files; the GPL MAGIC baseline only with the ``denoising-gpl`` extra).
"""

from tttd.tasks.denoising.task import DenoisingTask  # noqa: F401  (registers "denoising")
