"""Code that runs inside the sandbox, never imported by tttd itself: the driver that calls an
upstream evaluator (:mod:`driver`, sent as the candidate's source) and minimal stand-ins for the
parts of ``openevolve`` and ``shinka`` that evaluators import (``shims/``), written for tttd
from the frameworks' documented interfaces. When the real packages are installed they win."""
