"""``python -m crm_gateway.migrate [--check]``: bring the schema to the latest revision."""

from pathlib import Path

from crm_gateway.config import Settings
from crm_libs.migrations import main

if __name__ == "__main__":
    main(Path(__file__).parent / "migrations", Settings().database_url)
