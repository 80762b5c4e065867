"""``tttd ablate``: does each part of the method earn its place, on this problem, in this code?

The paper's ablations (frozen policy, expected-reward objective, constant beta, no reuse,
best-of-N) run at the same sample budget over several seeds, as ordinary run directories under
one ablation directory (:mod:`tttd.ablate.spec`), scheduled over the machine's cores and resumable
after a kill (:mod:`tttd.ablate.runner`, :mod:`tttd.ablate.worker`); the result is a table with
bootstrap intervals and paired tests against the full method (:mod:`tttd.ablate.stats`,
:mod:`tttd.ablate.table`) and a report with best-so-far curves (:mod:`tttd.report.ablation`).
"""
