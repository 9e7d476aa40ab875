"""Command-line jobs (python -m jobs.NAME --help). Each prints one JSON summary line and
exits non-zero when a cron should alert. Exit codes are listed in docs/registry.md."""
