"""The sandbox: one entry point that runs untrusted code plus tests and returns a verdict.

Contract used by the pipeline (the execute stage) and by `selfcodealign sandbox`:

    Program(id, code, tests="", timeout=10.0, memory_mb=1024)
    run_program(program) -> Verdict
    iter_batch(programs, workers=None) -> Iterator[tuple[int, Verdict]]   # as finished
    run_batch(programs, workers=None) -> list[Verdict]                    # input order
    check() -> SandboxInfo                                                # mode in use
"""
