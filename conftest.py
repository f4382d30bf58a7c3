pytest_plugins = ["crm_devstack.fixtures"]
