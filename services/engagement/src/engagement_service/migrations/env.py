from sqlmodel import SQLModel

from crm_libs.migrations import run_env
from engagement_service.config import Settings
from engagement_service.models import import_all_models

import_all_models()
run_env(SQLModel.metadata, Settings().database_url)
