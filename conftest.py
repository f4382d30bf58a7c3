pytest_plugins = ["crm_libs.testing.fixtures"]
