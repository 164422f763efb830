"""End-to-end tests start real `a2n` processes, each with its own connection budget.

Under pytest-xdist (`make test`, `--dist loadfile`) each file's tests run on one worker, one
after another, so a file's processes never overlap each other. Files run side by side on the
workers: the largest topology here (serve + project + work, test_live_progress) holds at most 24
connections, so even three at once stay well inside a stock PostgreSQL's 100 beside the workers'
own databases.
"""
