"""HTML reports: one self-contained page (inline CSS and JS, no network requests) for a
run directory (`selfcodealign report`, written by every `run`), for a `train` output
directory (`selfcodealign report MODEL_DIR`: the recipe and the training curves) and for
two evaluations (`selfcodealign compare A B --report FILE.html`).

Kept apart from the pipeline: a report reads the files a run, a training or an eval wrote, and
nothing else.
"""

from selfcodealign.report.eval_report import write_eval_report
from selfcodealign.report.run_report import write_run_report
from selfcodealign.report.train_report import is_train_dir, write_train_report

__all__ = ["is_train_dir", "write_eval_report", "write_run_report", "write_train_report"]
