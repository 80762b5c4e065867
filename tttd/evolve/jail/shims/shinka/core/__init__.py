from shinka.core.wrap_eval import run_shinka_eval  # noqa: F401
