"""What a sandbox server loads and runs once, before its first job, so that every run
forked from it starts warm: the common modules (PRELOAD), the heavy libraries it was
started for (HEAVY) with a warm-up of their usual calls (WARM), CPython's lazily made
parts, and the environment every run gets (RUN_ENV).

Like fork_server.py, this runs inside the sandbox (the host sends its source after the
server's, see launch.server_preamble): standard library only, no ``selfcodealign``. The
host imports it too, for HEAVY (server_flavors.py).
"""

import os
import sys

# Modules typical generated programs and their tests import; importing them once here
# makes every forked run start with them in memory. Each one also makes every fork a
# little dearer (more pages and mappings to copy and tear down), so rarely used ones are
# left out: of the reproduction's 2,353 passing examples, 0.3% import hashlib, 0.4% csv,
# 0.2% unittest and 0.1% dataclasses (unittest and dataclasses together cost every run
# ~60-100 us on the development VM; importing them in a run costs 17 and 12 ms).
PRELOAD = (
    "abc bisect collections collections.abc contextlib copy datetime enum functools heapq "
    "itertools json math operator random re string sys time traceback types typing"
).split()

# Heavy libraries, each with the submodules that programs import most. Of the 3,533
# generated programs in data/responses-real-sample.jsonl.gz, 30% import numpy, 4.8%
# scipy, 4.6% sympy, 2.0% pandas, 1.6% sklearn, 1.3% matplotlib, 0.3% requests, 0.2%
# statsmodels and 0.1% torch; a run that imports them itself pays 0.1 s (numpy) to
# 1.5 s (statsmodels, torch) of CPU. They are not in every server: a run on a server
# holding all but torch costs ~19 ms of CPU against ~2 on the plain one (fork copies the
# page tables of ~250 MiB of heap, exit tears them down), so the host sends each program
# to the cheapest server that holds what it names (server_flavors.FLAVORS). One that is not
# installed is skipped.
HEAVY = {
    "numpy": ("numpy", "numpy.random"),
    "scipy": (
        "scipy", "scipy.stats", "scipy.special", "scipy.sparse", "scipy.integrate",
        "scipy.optimize", "scipy.ndimage", "scipy.linalg", "scipy.cluster",
    ),
    "sympy": ("sympy",),
    "pandas": ("pandas",),
    "sklearn": (
        "sklearn", "sklearn.linear_model", "sklearn.model_selection", "sklearn.metrics",
        "sklearn.preprocessing", "sklearn.datasets", "sklearn.ensemble", "sklearn.pipeline",
    ),
    "matplotlib": ("matplotlib", "matplotlib.pyplot"),
    "statsmodels": ("statsmodels.api",),
    "requests": ("requests",),
    "torch": ("torch",),
}

# Run once in a server after its imports: what a program's first calls would otherwise
# import lazily or set up in every run (sympy's solvers and printers: a typical sympy
# program drops from ~100 to ~10 ms; matplotlib's fonts; pandas' formatters). Nothing
# here leaves state a program could see: caches are cleared, figures closed, and the
# global random generators are not drawn from.
WARM = {
    "numpy": (
        "import numpy as np\n"
        "a = np.arange(6.0).reshape(2, 3)\n"
        "str(a); repr(a); a.tolist(); a.mean(axis=0); a.std(); a @ a.T; np.sort(a)\n"
        "np.linalg.norm(a); np.linalg.inv(np.eye(2)); np.allclose(a, a); np.array_equal(a, a)\n"
        "np.unique([3, 1, 1]); np.concatenate([a, a]); np.where(a > 1); np.random.default_rng(0)\n"
    ),
    "scipy": (
        "import numpy as np\n"
        "from scipy import integrate, linalg, optimize, special, stats\n"
        "stats.norm.cdf(0.5); stats.norm.pdf(0.5); stats.ttest_ind([1, 2, 3], [2, 3, 5])\n"
        "stats.pearsonr([1, 2, 3], [2, 3, 5]); special.gamma(3.5); special.comb(5, 2)\n"
        "optimize.minimize(lambda x: (x[0] - 1) ** 2, [0.0]); integrate.quad(lambda x: x, 0, 1)\n"
        "linalg.det(np.eye(2))\n"
    ),
    "sympy": (
        "import sympy\n"
        "x = sympy.Symbol('x')\n"
        "sympy.simplify(sympy.sin(x) ** 2 + sympy.cos(x) ** 2); sympy.solve(x ** 2 - 1, x)\n"
        "sympy.integrate(x ** 2, x); sympy.diff(sympy.exp(x), x); sympy.factor(x ** 2 - 1)\n"
        "sympy.expand((x + 1) ** 2); str(sympy.Matrix([[1, 2], [3, 4]]).inv())\n"
        "sympy.latex(x ** 2); sympy.pretty(x); sympy.series(sympy.sin(x), x)\n"
        "sympy.limit(sympy.sin(x) / x, x, 0); sympy.isprime(7); sympy.Rational(1, 3) + 1\n"
        "sympy.core.cache.clear_cache()\n"
    ),
    "pandas": (
        "import pandas as pd\n"
        "df = pd.DataFrame({'a': [1, 2, 2], 'b': [0.5, 1.5, 2.5], 'c': ['x', 'y', 'z']})\n"
        "str(df); repr(df['a']); df.describe(); df.groupby('a').sum(); df.sort_values('b')\n"
        "df.merge(df, on='a'); df.to_dict(); df.to_csv(); pd.to_datetime(['2020-01-01'])\n"
        "df.isna().sum(); df.apply(lambda r: r['a'], axis=1)\n"
        "pd.testing.assert_frame_equal(df, df.copy())\n"
    ),
    "sklearn": (
        "import numpy as np\n"
        "from sklearn.linear_model import LinearRegression, LogisticRegression\n"
        "from sklearn.metrics import accuracy_score, mean_squared_error\n"
        "from sklearn.model_selection import train_test_split\n"
        "from sklearn.preprocessing import StandardScaler\n"
        "X, y = np.arange(20.0).reshape(10, 2), np.arange(10) % 2\n"
        "LinearRegression().fit(X, y).predict(X); LogisticRegression().fit(X, y).score(X, y)\n"
        "train_test_split(X, y, test_size=0.3, random_state=0); StandardScaler().fit_transform(X)\n"
        "accuracy_score(y, y); mean_squared_error(y, y)\n"
    ),
    "matplotlib": (
        "import io\n"
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(); ax.plot([1, 2], [3, 4], label='a'); ax.set_title('t')\n"
        "ax.legend(); fig.savefig(io.BytesIO(), format='png'); plt.close('all')\n"
    ),
    "statsmodels": (
        "import numpy as np\n"
        "import statsmodels.api as sm\n"
        "X = sm.add_constant(np.arange(10.0))\n"
        "sm.OLS(np.arange(10.0) * 2 + 1, X).fit().summary()\n"
    ),
    "torch": (
        "import torch\n"
        "t = torch.arange(6.0).reshape(2, 3)\n"
        "str(t); (t @ t.T).sum().item(); torch.nn.Linear(3, 1)(t); torch.tensor([1, 2]).tolist()\n"
    ),
}

# Every run's environment (set before anything is imported, so the same with or without
# the heavy modules preloaded). A server must stay single-threaded to fork safely, and a
# run gets one core: BLAS and OpenMP pools of one thread (OpenBLAS otherwise starts one
# thread per core at import), pyarrow's jemalloc (imported by pandas) without its
# background thread; matplotlib draws without a display.
RUN_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "JE_ARROW_MALLOC_CONF": "background_thread:false",
    "MPLBACKEND": "Agg",
}


def warm_up():
    """Pay once, here, for what CPython initialises lazily on first use (the AST types,
    the compiler, traceback formatting): otherwise every forked run pays it again."""
    import ast
    import io
    import traceback

    src = (
        "import math\n"
        "def f(x: int) -> list:\n    return [i * i for i in range(x)]\n"
        "class A:\n    def __init__(self):\n        self.v = {k: v for k, v in [(1, 2)]}\n"
        "assert f(3) == [0, 1, 4], f'{A().v}'\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    pass\n"
    )
    tree = ast.parse(src, "<warm>")
    exec(compile(tree, "<warm>", "exec"), {"__name__": "__warm__"})
    try:
        raise ValueError("warm")
    except ValueError:
        traceback.print_exc(file=io.StringIO())


def single_threaded(after):
    # libc's fork copies only the calling thread; another one could hold a lock that
    # every run would then wait on until its deadline.
    if len(os.listdir("/proc/self/task")) > 1:
        raise SystemExit(f"sandbox server: {after} started a thread")


def warm_heavy(groups):
    """WARM for each heavy group this server holds (a group not installed fails here
    and is skipped)."""
    import warnings

    for group in groups:
        if group not in WARM:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                exec(compile(WARM[group], f"<warm {group}>", "exec"), {"__name__": "__warm__"})
            except Exception:
                pass
        single_threaded(f"warming {group}")


def preload(heavy_groups, extra=()):
    """Import PRELOAD, the modules of the heavy groups and ``extra``; one that fails to
    import is skipped. Each must leave the server single-threaded."""
    heavy = [m for group in heavy_groups for m in HEAVY[group]]
    for name in PRELOAD + heavy + list(extra):
        try:
            __import__(name)
        except Exception:
            pass
        single_threaded(f"importing {name}")


def rehearse(workdir):
    """Go through the runner's own path here, in the server, a few dozen times, for a
    passing and a failing program: CPython specialises the bytecode it runs often,
    fills its attribute lookup cache and compiles traceback formatting lazily, and
    every run forked after this finds all that done instead of writing (and so
    copying) it again."""
    import linecache

    runner = sys.modules["__sandbox_runner__"]

    class Ended(BaseException):
        pass

    def no_exit(status):
        raise Ended

    real = runner._write, runner._exit
    runner._write, runner._exit = (lambda fd, data: len(data)), no_exit
    # A failing run writes main.py into its directory (for the traceback's source
    # lines): here that is the private working directory, which the caller empties.
    os.chdir(workdir)
    runner.RUNDIR = os.getcwd()
    try:
        for tests in ("assert f(2) == 3", "assert f(2) == 4"):
            for _ in range(40):
                code = "def f(x):\n    return x + 1\n"
                main = runner.make_main(code, tests)
                try:
                    runner.run(runner.prepare(code, tests), main, "0")
                except Ended:
                    pass
    finally:
        runner._write, runner._exit = real
        linecache.clearcache()  # the rehearsal's "main.py" must not show in a run
