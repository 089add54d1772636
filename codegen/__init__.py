"""Code generation: what must not be written twice, derived from schemas/ and specs/.

    python -m codegen          # (re)write the generated files
    python -m codegen --check  # exit 1 and list the stale files (CI and a pytest test run this)

Outputs are deterministic (no timestamps, stable order) and committed.
"""
