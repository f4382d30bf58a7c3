"""``python -m engagement_service.migrate``: bring the database schema to the latest revision."""

from pathlib import Path

from crm_libs.migrations import upgrade
from engagement_service.config import Settings

if __name__ == "__main__":
    upgrade(Path(__file__).parent / "migrations", Settings().database_url)
