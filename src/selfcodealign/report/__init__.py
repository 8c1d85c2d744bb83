"""HTML reports: one self-contained page (inline CSS and JS, no network requests) for a
run directory (`selfcodealign report`, written by every `run`) and for two evaluations
(`selfcodealign compare A B --report FILE.html`).

Kept apart from the pipeline: a report reads the files a run or an eval wrote, and
nothing else.
"""

from selfcodealign.report.eval_report import write_eval_report
from selfcodealign.report.run_report import write_run_report

__all__ = ["write_eval_report", "write_run_report"]
