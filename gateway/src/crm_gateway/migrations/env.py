from sqlmodel import SQLModel

from crm_gateway.config import Settings
from crm_gateway.models import import_all_models
from crm_libs.migrations import run_env

import_all_models()
run_env(SQLModel.metadata, Settings().database_url)
