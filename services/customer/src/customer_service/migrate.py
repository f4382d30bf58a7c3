"""``python -m customer_service.migrate [--check]``: bring the schema to the latest revision."""

from pathlib import Path

from crm_libs.migrations import main
from customer_service.config import Settings

if __name__ == "__main__":
    main(Path(__file__).parent / "migrations", Settings().database_url)
