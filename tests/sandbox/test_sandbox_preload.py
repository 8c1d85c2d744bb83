"""Heavy libraries preloaded in the sandbox servers: where they are, that a run's changes
to them never reach the next run on the same server, and that they cost a run none of
its memory_mb."""

from __future__ import annotations

import ast
import logging

import pytest

from selfcodealign.sandbox import Program, run_batch
from selfcodealign.sandbox import launch, process, server_flavors
from selfcodealign.sandbox.server_flavors import installed_heavy
from selfcodealign.sandbox.warmup import HEAVY

# Each run prints its server's token first: the first draw of `random`, whose state every
# run of one server starts from (and two servers never share).
TOKEN = "import random\nprint(random.random())\n"

# For each module: setup, an expression of the state a run could change, and changes
# to it (patched functions, module globals, options, random state, ...).
CASES = {
    "stdlib": (
        "import codecs, collections, json, os, re, sys",
        "(json.dumps([1]), collections.OrderedDict.__name__, sys.getrecursionlimit(),"
        " os.getcwd(), os.environ.get('X'), len(re.findall('a', 'aa')), _known('evil'))",
        "json.dumps = lambda *a, **k: 'patched'\n"
        "collections.OrderedDict = dict\n"
        "sys.setrecursionlimit(123)\n"
        "os.environ['X'] = '1'\n"
        "os.chdir('/')\n"
        "re.findall = lambda *a: []\n"
        "codecs.register(lambda n: codecs.lookup('utf-8') if n == 'evil' else None)",
    ),
    "numpy": (
        "import numpy as np",
        "(np.get_printoptions()['precision'], np.geterr()['divide'], np.sum.__name__,"
        " np.random.get_state()[2], int(np.random.get_state()[1][0]), repr(np.pi * np.ones(1)))",
        "np.set_printoptions(precision=2)\n"
        "np.seterr(all='raise')\n"
        "np.sum = lambda *a, **k: 0\n"
        "np.random.random(1000)",
    ),
    "scipy": (
        "import scipy.special, scipy.stats",
        "(float(scipy.stats.norm.cdf(0.0)), float(scipy.special.gamma(5.0)), scipy.stats.norm.name)",
        "scipy.stats.norm = scipy.stats.expon\nscipy.special.gamma = lambda x: -1.0",
    ),
    "sympy": (
        "import sympy\nfrom sympy.core.parameters import global_parameters",
        "(global_parameters.evaluate, str(sympy.sin(sympy.Symbol('x'))), str(sympy.Integer(2) + 3))",
        "global_parameters.evaluate = False\nsympy.sin = sympy.cos",
    ),
    "pandas": (
        "import pandas as pd",
        "(pd.get_option('display.max_rows'), pd.DataFrame.sum.__name__,"
        " int(pd.DataFrame({'a': [1, 2]}).sum().iloc[0]))",
        "pd.set_option('display.max_rows', 3)\npd.DataFrame.sum = lambda self, *a, **k: pd.Series([0])",
    ),
    "sklearn": (
        "import sklearn, sklearn.linear_model",
        "(sklearn.get_config()['assume_finite'], sklearn.linear_model.LinearRegression.fit.__name__)",
        "sklearn.set_config(assume_finite=True)\n"
        "sklearn.linear_model.LinearRegression.fit = lambda self, X, y: self",
    ),
    "matplotlib": (
        "import matplotlib, matplotlib.pyplot as plt",
        "(plt.get_fignums(), matplotlib.rcParams['lines.linewidth'], matplotlib.get_backend())",
        "plt.figure()\nplt.plot([1, 2])\nmatplotlib.rcParams['lines.linewidth'] = 9.0\n"
        "plt.switch_backend('pdf')",
    ),
    "statsmodels": (
        "import statsmodels.api as sm",
        "(sm.OLS.fit.__name__, callable(sm.add_constant))",
        "sm.OLS.fit = lambda self: None\nsm.add_constant = None",
    ),
    "requests": (
        "import requests, requests.utils",
        "(requests.get.__name__, requests.utils.DEFAULT_ACCEPT_ENCODING)",
        "requests.get = lambda *a, **k: None\nrequests.utils.DEFAULT_ACCEPT_ENCODING = 'evil'",
    ),
    "torch": (
        "import torch",
        "(str(torch.get_default_dtype()), torch.rand(1).item(), torch.nn.functional.relu.__name__)",
        "torch.set_default_dtype(torch.float64)\ntorch.manual_seed(123)\n"
        "torch.nn.functional.relu = lambda x: x",
    ),
}

KNOWN = (
    "def _known(name):\n"
    "    import codecs\n"
    "    try:\n"
    "        codecs.lookup(name)\n"
    "    except LookupError:\n"
    "        return False\n"
    "    return True\n"
)


def _lines(v) -> list[str]:
    assert v.status == "passed", v
    return v.stdout.splitlines()


@pytest.mark.parametrize("module", list(CASES))
def test_a_runs_changes_to_a_preloaded_module_never_reach_the_next_run(module):
    if module != "stdlib" and module not in installed_heavy():
        pytest.skip(f"{module} is not installed")
    setup, state, change = CASES[module]
    code = (
        f"{TOKEN}{KNOWN}{setup}\n"
        f"print(repr({state}))\n{change}\nprint(repr({state}))\n"
    )
    # One worker: the runs go one after the other to the same server (the token says so).
    verdicts = run_batch([Program(id=f"r{i}", code=code) for i in range(3)], workers=1)
    runs = [_lines(v) for v in verdicts]
    assert len({r[0] for r in runs}) == 1, "the runs were served by different servers"
    before, after = runs[0][1], runs[0][2]
    assert after != before, "the change did not take in its own run"
    assert [r[1] for r in runs] == [before] * 3
    assert [r[2] for r in runs] == [after] * 3


@pytest.mark.parametrize("group", list(HEAVY))
def test_a_heavy_library_is_loaded_before_the_run_if_the_program_names_it(group):
    if group not in installed_heavy():
        pytest.skip(f"{group} is not installed")
    # The names built from pieces: only the comment names a heavy library.
    hidden = "[" + ", ".join(f"'{m[:2]}' + '{m[2:]}'" for m in sorted(HEAVY)) + "]"
    loaded = f"import sys\nprint(sorted(m for m in {hidden} if m in sys.modules))\n"
    named = Program(id="named", code=f"# uses {group}\n" + loaded)
    plain = Program(id="plain", code=loaded)
    v_named, v_plain = run_batch([named, plain], workers=1)
    assert group in ast.literal_eval(_lines(v_named)[0])
    assert ast.literal_eval(_lines(v_plain)[0]) == []


@pytest.mark.parametrize("flavor", range(len(server_flavors.FLAVORS)))
def test_a_preloaded_server_leaves_a_run_its_memory_mb(flavor):
    """memory_mb is the run's own, on top of the server and its preloaded modules."""
    names = [g for g in server_flavors.FLAVORS[flavor] if g in installed_heavy()]
    if names != list(server_flavors.FLAVORS[flavor]):
        pytest.skip("not every library of this server is installed")
    imports = "import " + ", ".join(names) if names else ""
    fits = Program(id="fits", code=f"{imports}\nb = bytearray(200 << 20)\nprint(len(b))", memory_mb=256)
    over = Program(id="over", code=f"{imports}\nb = bytearray(400 << 20)\nprint(len(b))", memory_mb=256)
    v_fits, v_over = run_batch([fits, over], workers=1)
    assert v_fits.status == "passed", v_fits
    assert v_over.status == "oom", v_over


def test_runs_on_a_preloaded_server_are_single_threaded():
    if "numpy" not in installed_heavy():
        pytest.skip("numpy is not installed")
    code = (
        "import os\nimport numpy as np\n"
        "a = np.ones((300, 300))\nb = a @ a\n"
        "print(len(os.listdir('/proc/self/task')), os.environ['OPENBLAS_NUM_THREADS'])"
    )
    (v,) = run_batch([Program(id="t", code=code)], workers=1)
    assert _lines(v) == ["1 1"]


def test_a_server_with_heavy_modules_that_cannot_start_leaves_programs_to_the_plain_one(
    monkeypatch, caplog
):
    if "numpy" not in installed_heavy():
        pytest.skip("numpy is not installed")
    real = launch.build_launch

    def broken(mode, index, nproc_base=0, heavy=()):
        # A group the server does not know: it dies before its hello.
        return real(mode, index, nproc_base, ("no-such-group",) if heavy else ())

    monkeypatch.setattr(process, "build_launch", broken)
    code = "import sys\nprint('numpy' in sys.modules)\nimport numpy\nprint(numpy.arange(3).sum())"
    with caplog.at_level(logging.WARNING, logger="selfcodealign.sandbox.schedule"):
        verdicts = run_batch([Program(id=f"n{i}", code=code) for i in range(3)], workers=1)
    assert [_lines(v) for v in verdicts] == [["False", "3"]] * 3
    assert "programs import them themselves" in caplog.text


def test_every_heavy_library_has_an_isolation_case():
    assert set(HEAVY) <= set(CASES)
