from sqlmodel import SQLModel

from crm_libs.migrations import run_env
from customer_service.config import Settings
from customer_service.models import import_all_models

import_all_models()
run_env(SQLModel.metadata, Settings().database_url)
